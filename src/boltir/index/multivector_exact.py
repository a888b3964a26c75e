"""Exact MaxSim search over stored per-token vectors (ColBERT), the ground truth for PLAID.

Candidates come from a token-level Faiss search (each query token's nearest document tokens, as in ColBERT's
first end-to-end retrieval); each candidate is then scored exactly over its full token matrix. With
``candidates_per_token=None`` every document is scored (exhaustive; small collections and checks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, require
from ..types import TokenVectors
from .base import IndexConfig, Indexer, Searcher
from .vectors import TOKEN_DTYPES, TokenWriter, pad_results, read_tokens, token_matrices, top_k


class MultiVectorExactIndexer(Indexer):
    representation: ClassVar[str] = "multi-vector"
    config: MultiVectorExactIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: MultiVectorExactIndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        self.dim = int(self.fingerprint["dim"])
        self.writer = TokenWriter(self.tmp, self.dim, config.token_dtype)

    def _add(self, embeddings: TokenVectors) -> None:
        self.writer.add(token_matrices(embeddings, self.dim, self.config.engine))

    def _write(self, directory: Path) -> dict[str, Any]:
        fields = self.writer.close()
        return {**fields, "empty_docs": int(sum(n == 0 for n in self.writer.lengths))}

    def abort(self) -> None:
        self.writer.abort()
        super().abort()


class MultiVectorExactSearcher(Searcher):
    config: MultiVectorExactIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: MultiVectorExactIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        self.dim = int(manifest["dim"])
        self.tokens, self.offsets = read_tokens(self.directory, manifest)
        self.lengths = np.diff(self.offsets)
        if self.tokens.size * 4 <= config.max_memory_mb * 2**20:
            self.tokens = np.asarray(self.tokens, dtype=np.float32)  # products in BLAS, no conversion per search

    def _chunk(self, start: int, end: int) -> np.ndarray:
        return np.asarray(self.tokens[start:end], dtype=np.float32)

    # -- candidates --------------------------------------------------------------------------------
    def candidates(self, query: np.ndarray) -> np.ndarray:
        """Sorted positions of documents owning one of the query tokens' nearest document tokens (exact
        inner-product search over every stored token, by Faiss, chunk by chunk)."""
        faiss = require("faiss", "faiss-cpu", "the multi-vector exact index")
        k = min(self.config.candidates_per_token, len(self.tokens))
        best_scores, best_ids = [], []
        for start in range(0, len(self.tokens), self.config.chunk_tokens):
            chunk = self._chunk(start, start + self.config.chunk_tokens)
            scores, ids = faiss.knn(np.ascontiguousarray(query, dtype=np.float32), chunk, min(k, len(chunk)),
                                    metric=faiss.METRIC_INNER_PRODUCT)
            best_scores.append(scores)
            best_ids.append(np.where(ids >= 0, ids + start, -1))
        scores, ids = np.concatenate(best_scores, axis=1), np.concatenate(best_ids, axis=1)
        if scores.shape[1] > k:  # merge the chunks' lists: the k best of each query token
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            ids = np.take_along_axis(ids, keep, axis=1)
        ids = ids[ids >= 0]
        return np.unique(np.searchsorted(self.offsets, ids, side="right") - 1)

    # -- exact MaxSim ------------------------------------------------------------------------------
    def maxsim(self, queries: list[np.ndarray], docs: np.ndarray) -> np.ndarray:
        """``[len(queries), len(docs)]`` exact MaxSim scores; ``docs`` are positions of non-empty documents."""
        scores = np.zeros((len(queries), len(docs)), dtype=np.float32)
        query_tokens = np.concatenate(queries) if queries else np.zeros((0, self.dim), np.float32)
        query_starts = np.concatenate([[0], np.cumsum([len(q) for q in queries])[:-1]]).astype(np.int64)
        ends = np.cumsum(self.lengths[docs])
        start = 0
        while start < len(docs):  # chunks of whole documents, about chunk_tokens tokens each
            done = ends[start - 1] if start else 0
            end = max(start + 1, int(np.searchsorted(ends, done + self.config.chunk_tokens, side="right")))
            chunk = docs[start:end]
            if chunk[-1] - chunk[0] + 1 == len(chunk):  # contiguous: one slice of the memory map
                matrix = self._chunk(self.offsets[chunk[0]], self.offsets[chunk[-1] + 1])
            else:
                rows = np.concatenate([np.arange(self.offsets[d], self.offsets[d + 1]) for d in chunk])
                matrix = np.asarray(self.tokens[rows], dtype=np.float32)
            sims = query_tokens @ matrix.T
            doc_starts = np.concatenate([[0], np.cumsum(self.lengths[chunk])[:-1]])
            best = np.maximum.reduceat(sims, doc_starts, axis=1)  # [query tokens, docs]: best match per document
            scores[:, start:end] = np.add.reduceat(best, query_starts, axis=0) if len(query_tokens) else 0
            start = end
        return scores

    def search_arrays(self, query_embeddings: TokenVectors, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = token_matrices(query_embeddings, self.dim, self.config.engine)
        nonempty = np.flatnonzero(self.lengths > 0)
        empty = (np.zeros(0, np.float32), np.zeros(0, np.int64))
        if self.config.candidates_per_token is None:
            live = [i for i, q in enumerate(queries) if len(q)]
            scores = self.maxsim([queries[i] for i in live], nonempty) if len(nonempty) else np.zeros((len(live), 0), np.float32)
            rows = [empty] * len(queries)
            for row, i in enumerate(live):
                rows[i] = top_k(scores[row], nonempty, k)
            return pad_results(rows, self.doc_ids, k)
        rows = []
        for query in queries:
            docs = self.candidates(query) if len(query) and len(nonempty) else np.zeros(0, np.int64)
            rows.append(top_k(self.maxsim([query], docs)[0], docs, k) if len(docs) else empty)
        return pad_results(rows, self.doc_ids, k)


@dataclass
class MultiVectorExactIndexConfig(IndexConfig):
    """Stored token vectors, searched by exact MaxSim.

    Attributes:
        token_dtype: how token vectors are stored (float16 halves the index; MaxSim is computed in float32).
        candidates_per_token: nearest document tokens fetched per query token to pick candidate documents;
            None scores every document.
        chunk_tokens: document tokens scored at once (bounds the memory of a search).
        max_memory_mb: stored tokens up to this size are held in memory as float32 at search time (fast BLAS
            products); larger indexes are read from the memory map chunk by chunk.
    """

    engine: ClassVar[str] = "multivector-exact"
    indexer_class: ClassVar[type[Indexer]] = MultiVectorExactIndexer
    searcher_class: ClassVar[type[Searcher]] = MultiVectorExactSearcher

    token_dtype: str = "float16"
    candidates_per_token: int | None = 64
    chunk_tokens: int = 131_072
    max_memory_mb: int = 4096

    def __post_init__(self) -> None:
        if self.token_dtype not in TOKEN_DTYPES:
            raise ConfigError(f"token_dtype='{self.token_dtype}' is not supported; choose one of {list(TOKEN_DTYPES)}.")
        if self.candidates_per_token is not None and self.candidates_per_token <= 0:
            raise ConfigError(f"candidates_per_token must be positive or None (score all), got {self.candidates_per_token}.")
        if self.chunk_tokens <= 0 or self.max_memory_mb < 0:
            raise ConfigError(f"chunk_tokens must be positive and max_memory_mb >= 0, got {self.chunk_tokens}, {self.max_memory_mb}.")


__all__ = ["MultiVectorExactIndexConfig", "MultiVectorExactIndexer", "MultiVectorExactSearcher"]
