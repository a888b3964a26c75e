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
from ..models.layers import TokenVectors
from .base import IndexConfig, Indexer, Searcher, read_manifest
from .vectors import TOKEN_DTYPES, TokenWriter, pad_results, read_tokens, token_matrices, top_k


@dataclass
class MultiVectorExactIndexConfig(IndexConfig):
    """Stored token vectors, searched by exact MaxSim.

    Attributes:
        token_dtype: how token vectors are stored (float16 halves the index; MaxSim is computed in float32).
        candidates_per_token: nearest document tokens fetched per query token to pick candidate documents;
            None scores every document.
        chunk_tokens: document tokens scored at once (bounds memory of exhaustive scoring).
    """

    engine: ClassVar[str] = "multivector-exact"

    token_dtype: str = "float16"
    candidates_per_token: int | None = 64
    chunk_tokens: int = 131_072

    def __post_init__(self) -> None:
        if self.token_dtype not in TOKEN_DTYPES:
            raise ConfigError(f"token_dtype='{self.token_dtype}' is not supported; choose one of {list(TOKEN_DTYPES)}.")
        if self.candidates_per_token is not None and self.candidates_per_token <= 0:
            raise ConfigError(f"candidates_per_token must be positive or None (score all), got {self.candidates_per_token}.")
        if self.chunk_tokens <= 0:
            raise ConfigError(f"chunk_tokens must be positive, got {self.chunk_tokens}.")

    def indexer(self, directory: str | os.PathLike[str], model: Any) -> MultiVectorExactIndexer:
        return MultiVectorExactIndexer(directory, self, model)

    def searcher(self, directory: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> MultiVectorExactSearcher:
        return MultiVectorExactSearcher(directory, self, manifest or read_manifest(directory))


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
        self._token_index: Any = None

    # -- candidates --------------------------------------------------------------------------------
    def token_index(self) -> Any:
        """A brute-force Faiss index over every stored token (built on first use; storage as on disk)."""
        if self._token_index is None:
            faiss = require("faiss", "faiss-cpu", "the multi-vector exact index")
            if self.tokens.dtype == np.float16:
                index = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexFlatIP(self.dim)
            for start in range(0, len(self.tokens), self.config.chunk_tokens):
                index.add(np.ascontiguousarray(self.tokens[start : start + self.config.chunk_tokens], dtype=np.float32))
            self._token_index = index
        return self._token_index

    def candidates(self, query: np.ndarray) -> np.ndarray:
        """Sorted positions of documents owning one of the query tokens' nearest document tokens."""
        _, token_ids = self.token_index().search(query, self.config.candidates_per_token)
        token_ids = token_ids[token_ids >= 0]
        return np.unique(np.searchsorted(self.offsets, token_ids, side="right") - 1)

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
                matrix = self.tokens[self.offsets[chunk[0]] : self.offsets[chunk[-1] + 1]]
            else:
                matrix = self.tokens[np.concatenate([np.arange(self.offsets[d], self.offsets[d + 1]) for d in chunk])]
            sims = query_tokens @ np.asarray(matrix, dtype=np.float32).T
            doc_starts = np.concatenate([[0], np.cumsum(self.lengths[chunk])[:-1]])
            best = np.maximum.reduceat(sims, doc_starts, axis=1)  # [query tokens, docs]: best match per document
            scores[:, start:end] = np.add.reduceat(best, query_starts, axis=0) if len(query_tokens) else 0
            start = end
        return scores

    def search(self, query_embeddings: TokenVectors, k: int) -> tuple[np.ndarray, list[list[str]]]:
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


__all__ = ["MultiVectorExactIndexConfig", "MultiVectorExactIndexer", "MultiVectorExactSearcher"]
