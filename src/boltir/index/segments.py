"""Searching an index that stores one vector per document segment: results are documents, scored by their best segment.

The wrapped engine searches segment vectors as usual (its ``doc_ids.txt`` names each segment's document). This
searcher over-fetches, keeps each document's first (best-scoring) hit, and asks again with a deeper cut-off when
too few distinct documents came back. With an exact engine the result is exactly the top-k documents by max
segment score: a document missing from the fetched segments has no segment scoring above them.
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from .base import Searcher


class SegmentSearcher(Searcher):
    """Wraps any engine's searcher over a segmented index and aggregates segment hits into documents (max)."""

    def __init__(self, inner: Searcher) -> None:  # shares the inner searcher's state instead of re-reading it
        self.inner = inner
        self.directory, self.config, self.manifest = inner.directory, inner.config, inner.manifest
        self.doc_ids = inner.doc_ids
        self.vectors = int(self.manifest["count"])
        self.documents = int(self.manifest.get("documents") or self.vectors)

    def search_arrays(self, query_embeddings: Tensor, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Scores ``[Q, <=k]`` (best first) and ids of distinct documents, each scored by its best segment."""
        wanted = min(k, self.documents)
        fetch = min(self.vectors, k * max(2, math.ceil(self.vectors / max(self.documents, 1))))
        while True:
            scores, ids = self.inner.search_arrays(query_embeddings, fetch)
            rows = [_best_per_document(row_scores, row_ids, k) for row_scores, row_ids in zip(scores, ids)]
            if fetch >= self.vectors or all(len(row_ids) >= wanted for _, row_ids in rows):
                break
            fetch = min(self.vectors, fetch * 2)
        result = np.full((len(rows), max((len(r) for _, r in rows), default=0)), -np.inf, dtype=np.float32)
        for i, (row_scores, _) in enumerate(rows):
            result[i, : len(row_scores)] = row_scores
        return result, [row_ids for _, row_ids in rows]


def _best_per_document(scores: np.ndarray, ids: list[str], k: int) -> tuple[list[float], list[str]]:
    """The first (highest) hit of each document in a best-first list, at most ``k`` documents."""
    seen: set[str] = set()
    kept_scores, kept_ids = [], []
    for score, doc_id in zip(scores, ids):
        if doc_id in seen:
            continue
        seen.add(doc_id)
        kept_scores.append(float(score))
        kept_ids.append(doc_id)
        if len(kept_ids) == k:
            break
    return kept_scores, kept_ids


__all__ = ["SegmentSearcher"]
