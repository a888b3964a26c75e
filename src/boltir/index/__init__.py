"""Indexers and their searchers, one module per engine, all answering ``search(queries, k)``."""

from __future__ import annotations

import os

from ..errors import IndexMismatchError
from .base import IndexConfig, Indexer, Searcher, read_manifest
from .faiss import FaissIndexConfig, FaissIndexer, FaissSearcher
from .torch_exact import TorchIndexConfig, TorchIndexer, TorchSearcher

# Engines a manifest can name; a new engine adds its config class here.
INDEX_ENGINES: dict[str, type[IndexConfig]] = {
    FaissIndexConfig.engine: FaissIndexConfig,
    TorchIndexConfig.engine: TorchIndexConfig,
}


def open_searcher(directory: str | os.PathLike[str], **search_settings) -> Searcher:
    """Open any complete index by the engine its manifest names; ``search_settings`` override its config."""
    manifest = read_manifest(directory)
    engine = manifest.get("engine")
    if engine not in INDEX_ENGINES:
        raise IndexMismatchError(f"{directory} was built by the unknown engine '{engine}'; known: {sorted(INDEX_ENGINES)}.")
    config = INDEX_ENGINES[engine].from_dict({**manifest["index_config"], **search_settings})
    return config.searcher(directory, manifest)


__all__ = [
    "INDEX_ENGINES",
    "FaissIndexConfig",
    "FaissIndexer",
    "FaissSearcher",
    "IndexConfig",
    "Indexer",
    "Searcher",
    "TorchIndexConfig",
    "TorchIndexer",
    "TorchSearcher",
    "open_searcher",
    "read_manifest",
]
