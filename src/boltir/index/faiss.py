"""Dense vectors in Faiss: flat (exact) by default, IVF, IVF-PQ or HNSW by factory string."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from ..errors import ConfigError, require
from .base import IndexConfig, Indexer, Searcher

INDEX_FILE = "index.faiss"


def _faiss():
    return require("faiss", "faiss-cpu", "the Faiss index")


def _as_float32(vectors: Tensor | np.ndarray, normalize: bool) -> np.ndarray:
    """A contiguous float32 array for Faiss; normalised in a copy, never in the caller's memory."""
    array = vectors.detach().float().cpu().numpy() if isinstance(vectors, Tensor) else np.asarray(vectors, np.float32)
    if normalize:
        array = np.array(array, dtype=np.float32, order="C", copy=True)
        _faiss().normalize_L2(array)
        return array
    return np.ascontiguousarray(array, dtype=np.float32)


class FaissIndexer(Indexer):
    representation: ClassVar[str] = "dense"
    config: FaissIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: FaissIndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        faiss = _faiss()
        similarity = self.fingerprint["similarity"]
        self.normalize = similarity == "cosine"
        # euclidean ranks as l2 does; its score is the unsquared distance (taken at search time)
        self.metric = faiss.METRIC_L2 if similarity in ("l2", "euclidean") else faiss.METRIC_INNER_PRODUCT
        self.dim = int(self.fingerprint["dim"])
        try:
            self.index = faiss.index_factory(self.dim, config.factory, self.metric)
        except RuntimeError as exc:
            raise ConfigError(f"index_config.factory='{config.factory}' is not a valid Faiss factory string: {exc}") from None
        self._pending: list[np.ndarray] = []  # vectors held back until an untrained index can be trained
        self._pending_count = 0

    def _add(self, embeddings: Tensor) -> None:
        vectors = _as_float32(embeddings, self.normalize)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ConfigError(f"expected vectors of dim {self.dim}, got shape {tuple(vectors.shape)}")
        if self.index.is_trained:
            self.index.add(vectors)
            return
        self._pending.append(vectors)
        self._pending_count += len(vectors)
        if self._pending_count >= self.config.train_size:
            self._train_and_flush()

    def _train_and_flush(self) -> None:
        sample = np.concatenate(self._pending)
        try:
            self.index.train(sample)
        except RuntimeError as exc:
            raise ConfigError(
                f"Faiss could not train '{self.config.factory}' on {len(sample)} vectors ({exc}); "
                "use fewer IVF lists or a 'Flat' index for a collection this small."
            ) from None
        self.index.add(sample)
        self._pending, self._pending_count = [], 0

    def _write(self, directory: Path) -> dict[str, Any]:
        if self._pending:
            self._train_and_flush()
        _faiss().write_index(self.index, str(directory / INDEX_FILE))
        return {"dim": self.dim, "metric": "l2" if self.metric == _faiss().METRIC_L2 else "ip"}


class FaissSearcher(Searcher):
    config: FaissIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: FaissIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        faiss = _faiss()
        self.index = faiss.read_index(str(self.directory / INDEX_FILE))
        self.normalize = manifest["fingerprint"]["similarity"] == "cosine"
        self.l2 = manifest.get("metric") == "l2"
        self.euclidean = manifest["fingerprint"]["similarity"] == "euclidean"
        params = faiss.extract_index_ivf(self.index) if "IVF" in manifest["index_config"]["factory"] else None
        if params is not None:
            params.nprobe = config.nprobe or max(params.nprobe, 32)
        if config.ef_search is not None and hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = config.ef_search

    def search_arrays(self, query_embeddings: Tensor, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = _as_float32(query_embeddings, self.normalize)
        if queries.shape[1] != self.index.d:
            raise ConfigError(f"query vectors have dim {queries.shape[1]} but the index holds dim {self.index.d}.")
        distances, positions = self.index.search(queries, min(k, self.index.ntotal))
        scores = -distances if self.l2 else distances
        if self.euclidean:
            scores = -np.sqrt(np.maximum(distances, 0.0))
        found = positions >= 0  # approximate indexes may return fewer than k hits (position -1)
        ids = self.doc_ids[np.where(found, positions, 0)]
        if found.all():
            return scores, ids.tolist()
        return scores, [row[hit].tolist() for row, hit in zip(ids, found)]


@dataclass
class FaissIndexConfig(IndexConfig):
    """A Faiss index described by its factory string, as Faiss itself describes indexes.

    Attributes:
        factory: ``"Flat"`` (exact), ``"IVF4096,Flat"``, ``"IVF4096,PQ32"``, ``"HNSW32"``, ... — any Faiss factory string.
        train_size: vectors gathered to train IVF/PQ quantisers before the rest streams in.
        nprobe: IVF lists visited per query at search time (None: Faiss's default of 1 is raised to 32).
        ef_search: HNSW candidate list size at search time.
    """

    engine: ClassVar[str] = "faiss"
    indexer_class: ClassVar[type[Indexer]] = FaissIndexer
    searcher_class: ClassVar[type[Searcher]] = FaissSearcher

    factory: str = "Flat"
    train_size: int = 262_144
    nprobe: int | None = None
    ef_search: int | None = None


__all__ = ["FaissIndexConfig", "FaissIndexer", "FaissSearcher"]
