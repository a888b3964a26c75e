"""Sparse (SPLADE) vectors in Seismic (Bruch et al., SIGIR 2024; PyPI ``pyseismic-lsr``), for large collections.

Documents stream into a Seismic dataset keyed by their position; the index (pruned, blocked and summarised
posting lists) is built once when the stream ends. Documents whose vectors are empty (every weight pruned) are
left out by Seismic itself; they could never match a query.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from ..errors import ConfigError, require
from .base import IndexConfig, Indexer, Searcher
from .vectors import SparseRows, pad_results, sparse_rows, top_k

INDEX_STEM = "index"  # Seismic appends ".index.seismic"
U16_LIMIT = 65_536  # Seismic's default build stores term ids as u16; larger vocabularies use its "LV" classes


def _seismic():
    return require("seismic", "pyseismic-lsr", "the Seismic index", extra="sparse")


def _classes(dim: int) -> tuple[Any, Any]:
    seismic = _seismic()
    if dim > U16_LIMIT:
        return seismic.SeismicDatasetLV, seismic.SeismicIndexLV
    return seismic.SeismicDataset, seismic.SeismicIndex


def _new_dataset(dataset_class: Any, dim: int) -> Any:
    # pyseismic-lsr 0.5.4 sizes a dataset up front; 0.5.2 (the newest with cp312 wheels) takes no arguments
    return dataset_class(dim=dim) if hasattr(dataset_class, "add_documents_by_id") else dataset_class()


def add_rows(dataset: Any, rows: SparseRows, first: int) -> int:
    """Add ``rows`` under the names of their positions (``first``, ``first + 1``, ...); returns how many were
    stored (Seismic leaves empty vectors out)."""
    names = [str(first + i) for i in range(len(rows))]  # positions in doc_ids.txt
    if hasattr(dataset, "add_documents_by_id"):  # pyseismic-lsr >= 0.5.4: the whole batch at once
        return int(dataset.add_documents_by_id(names, rows.indices, rows.values, rows.indptr))
    string_type, stored = _seismic().get_seismic_string(), 0  # older: one document at a time, terms as strings
    for i, name in enumerate(names):
        terms, weights = rows.row(i)
        if len(terms):
            dataset.add_document(name, terms.astype(str).astype(string_type), np.ascontiguousarray(weights))
            stored += 1
    return stored


class SeismicIndexer(Indexer):
    representation: ClassVar[str] = "sparse"
    config: SeismicIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: SeismicIndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        self.dim = int(self.fingerprint["dim"])
        dataset_class, self.index_class = _classes(self.dim)
        self.dataset = _new_dataset(dataset_class, self.dim)
        self.stored = 0

    def _add(self, embeddings: Tensor) -> None:
        rows = sparse_rows(embeddings, self.dim, self.config.engine)
        self.stored += add_rows(self.dataset, rows, first=self.count)

    def _write(self, directory: Path) -> dict[str, Any]:
        c = self.config
        if self.stored:
            index = self.index_class.build_from_dataset(
                self.dataset, n_postings=c.n_postings, centroid_fraction=c.centroid_fraction,
                min_cluster_size=c.min_cluster_size, summary_energy=c.summary_energy, max_fraction=c.max_fraction,
                doc_cut=c.doc_cut, num_threads=c.num_threads,
            )
            index.save(str(directory / INDEX_STEM))
        self.dataset = None
        return {"dim": self.dim, "stored_docs": self.stored, "empty_docs": self.count - self.stored}


class SeismicSearcher(Searcher):
    config: SeismicIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: SeismicIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        self.dim = int(manifest["dim"])
        self.string_type = _seismic().get_seismic_string()
        _, index_class = _classes(self.dim)
        self.index = index_class.load(str(self.directory / f"{INDEX_STEM}.index.seismic")) if manifest["stored_docs"] else None

    def search_arrays(self, query_embeddings: Tensor, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = sparse_rows(query_embeddings, self.dim, self.config.engine)
        if self.index is None:  # every document was empty
            return pad_results([(np.zeros(0, np.float32), np.zeros(0, np.int64))] * len(queries), self.doc_ids, k)
        # one query at a time: pyseismic-lsr 0.5.4's batch_search intermittently answers every query after
        # the first with wrong documents (seen on identical inputs, even single-threaded); search() never did
        c, rows = self.config, []
        for i in range(len(queries)):
            terms, weights = queries.row(i)
            hits = self.index.search(str(i), terms.astype(str).astype(self.string_type), np.ascontiguousarray(weights),
                                     k=k, query_cut=c.query_cut, heap_factor=c.heap_factor)
            rows.append(top_k(np.array([h[1] for h in hits], dtype=np.float32), np.array([int(h[2]) for h in hits], dtype=np.int64), k))
        return pad_results(rows, self.doc_ids, k)


@dataclass
class SeismicIndexConfig(IndexConfig):
    """Seismic's build and search settings (names as in Seismic; defaults from its guidance, checked on SciFact).

    Build:
        n_postings: average posting-list length kept after pruning (Seismic's global threshold).
        centroid_fraction, min_cluster_size: how posting lists are split into blocks.
        summary_energy: fraction of a block's weight its summary vector keeps.
        max_fraction: longest posting list, as a multiple of ``n_postings``.
        doc_cut: document terms used when clustering blocks.
    Search (may be overridden per search; queries are answered one at a time):
        query_cut: query terms visited (the heaviest first).
        heap_factor: a block is scored only if its summary's score exceeds ``heap_factor`` x the current k-th
            best score; lower is more exact and slower.
        num_threads: threads that build the index (0: all cores).
    """

    engine: ClassVar[str] = "seismic"
    indexer_class: ClassVar[type[Indexer]] = SeismicIndexer
    searcher_class: ClassVar[type[Searcher]] = SeismicSearcher

    n_postings: int = 3500
    centroid_fraction: float = 0.1
    min_cluster_size: int = 2
    summary_energy: float = 0.4
    max_fraction: float = 1.5
    doc_cut: int = 15
    query_cut: int = 20
    heap_factor: float = 0.7
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.n_postings <= 0 or self.query_cut <= 0 or self.doc_cut <= 0:
            raise ConfigError("n_postings, query_cut and doc_cut must be positive.")
        if not 0 < self.heap_factor <= 1 or not 0 < self.summary_energy <= 1 or not 0 < self.centroid_fraction <= 1:
            raise ConfigError("heap_factor, summary_energy and centroid_fraction must lie in (0, 1].")


__all__ = ["SeismicIndexConfig", "SeismicIndexer", "SeismicSearcher"]
