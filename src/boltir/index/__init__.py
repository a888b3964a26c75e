"""Indexers and their searchers, one module per engine, all answering ``search(queries, k)``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import IndexMismatchError
from .base import IndexConfig, Indexer, Searcher, engines_for, read_manifest
from .bm25 import BM25IndexConfig, BM25Indexer, BM25Searcher
from .faiss import FaissIndexConfig, FaissIndexer, FaissSearcher
from .multivector_exact import MultiVectorExactIndexConfig
from .plaid import PlaidIndexConfig
from .segments import SegmentSearcher
from .seismic import SeismicIndexConfig
from .sparse_exact import SparseExactIndexConfig
from .storage import read_live, resolve_index, verify_index
from .dense_exact import TorchIndexConfig, TorchIndexer, TorchSearcher

# Engines a manifest can name; a new engine adds its config class here.
INDEX_ENGINES: dict[str, type[IndexConfig]] = {
    FaissIndexConfig.engine: FaissIndexConfig,
    SeismicIndexConfig.engine: SeismicIndexConfig,
    SparseExactIndexConfig.engine: SparseExactIndexConfig,
    PlaidIndexConfig.engine: PlaidIndexConfig,
    MultiVectorExactIndexConfig.engine: MultiVectorExactIndexConfig,
    BM25IndexConfig.engine: BM25IndexConfig,
    TorchIndexConfig.engine: TorchIndexConfig,
}


def open_searcher(directory: str | os.PathLike[str], **search_settings) -> Searcher:
    """Open any complete index by the engine its manifest names; ``search_settings`` override its config.

    It reads the live version of ``directory`` (see :mod:`boltir.index.storage`), even while a rebuild replaces it.
    """

    def open_live(live: Path) -> Searcher:
        manifest = read_manifest(live)
        engine = manifest.get("engine")
        if engine not in INDEX_ENGINES:
            raise IndexMismatchError(f"{directory} was built by the unknown engine '{engine}'; known: {sorted(INDEX_ENGINES)}.")
        config = INDEX_ENGINES[engine].from_dict({**manifest["index_config"], **search_settings})
        searcher = config.searcher(live, manifest)
        return SegmentSearcher(searcher) if manifest.get("segments") else searcher

    return read_live(directory, open_live)


__all__ = [
    "INDEX_ENGINES",
    "BM25IndexConfig",
    "BM25Indexer",
    "BM25Searcher",
    "FaissIndexConfig",
    "FaissIndexer",
    "FaissSearcher",
    "IndexConfig",
    "Indexer",
    "MultiVectorExactIndexConfig",
    "PlaidIndexConfig",
    "SeismicIndexConfig",
    "SegmentSearcher",
    "Searcher",
    "SparseExactIndexConfig",
    "TorchIndexConfig",
    "TorchIndexer",
    "TorchSearcher",
    "engines_for",
    "open_searcher",
    "read_manifest",
    "resolve_index",
    "verify_index",
]
