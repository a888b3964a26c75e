"""An exact inverted index for sparse (SPLADE) vectors: scipy sparse matrix products, the ground truth for Seismic.

The index is the transposed document-term matrix (one CSR row per term = its posting list), so a batch of
queries times it touches exactly the postings of the queries' terms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from ..errors import check_positive
from .base import IndexConfig, Indexer, Searcher
from .vectors import SparseRows, pad_results, scipy_sparse, sparse_rows, top_k

POSTINGS_FILE = "postings.npz"


class SparseExactIndexer(Indexer):
    representation: ClassVar[str] = "sparse"
    config: SparseExactIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: SparseExactIndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        scipy_sparse()  # fail before encoding anything if scipy is missing
        self.dim = int(self.fingerprint["dim"])
        self._batches: list[SparseRows] = []

    def _add(self, embeddings: Tensor) -> None:
        self._batches.append(sparse_rows(embeddings, self.dim, self.config.engine))

    def _write(self, directory: Path) -> dict[str, Any]:
        sp = scipy_sparse()
        docs = sp.vstack([b.to_scipy() for b in self._batches], format="csr")
        self._batches = []
        sp.save_npz(directory / POSTINGS_FILE, docs.T.tocsr(), compressed=False)
        return {"dim": self.dim, "nnz": int(docs.nnz), "empty_docs": int((np.diff(docs.indptr) == 0).sum())}


class SparseExactSearcher(Searcher):
    config: SparseExactIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: SparseExactIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        self.dim = int(manifest["dim"])
        self.postings = scipy_sparse().load_npz(self.directory / POSTINGS_FILE).tocsr()

    def search_arrays(self, query_embeddings: Tensor, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = sparse_rows(query_embeddings, self.dim, self.config.engine).to_scipy()
        rows = []
        for start in range(0, queries.shape[0], self.config.query_batch_size):
            scores = (queries[start : start + self.config.query_batch_size] @ self.postings).tocsr()
            for i in range(scores.shape[0]):
                lo, hi = scores.indptr[i], scores.indptr[i + 1]
                values, positions = scores.data[lo:hi], scores.indices[lo:hi]
                keep = values > 0  # a document sharing no term with the query is no match
                rows.append(top_k(values[keep].astype(np.float32), positions[keep], k))
        return pad_results(rows, self.doc_ids, k)


@dataclass
class SparseExactIndexConfig(IndexConfig):
    """Exact sparse retrieval by sparse matrix products; for small collections and to check Seismic.

    Attributes:
        query_batch_size: queries multiplied at once (bounds the memory of the [queries, docs] score matrix).
    """

    engine: ClassVar[str] = "sparse-exact"
    indexer_class: ClassVar[type[Indexer]] = SparseExactIndexer
    searcher_class: ClassVar[type[Searcher]] = SparseExactSearcher

    query_batch_size: int = 256

    def __post_init__(self) -> None:
        check_positive("index_config.query_batch_size", self.query_batch_size)


__all__ = ["SparseExactIndexConfig", "SparseExactIndexer", "SparseExactSearcher"]
