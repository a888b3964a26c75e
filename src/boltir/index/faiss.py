"""Dense vectors in Faiss: flat (exact) by default, IVF, IVF-PQ or HNSW by factory string.

Built from shards (see :mod:`boltir.index.shards`), an index is trained on a sample spread over all shards and
then receives the shards one by one. Two options keep large collections out of memory: ``sharded`` writes one
sub-index per shard (searched together, top-k merged by ``faiss.IndexShards``) and ``on_disk`` merges the
shards' inverted lists into one file on disk (Faiss's ``OnDiskInvertedLists``) that searches memory-map.

Compressed codes (PQ) rank approximately; ``refine`` keeps a second, finer code of every vector (Faiss's
``IndexRefine``: ``SQ8`` is one byte a dimension, ``SQfp16`` two, ``Flat`` the float32 vector) with which the
``k_factor * k`` best candidates of the first stage are scored again. It works with every layout: shard by shard,
``sharded`` (each sub-index re-ranks its own candidates before the merge) and ``on_disk`` (the inverted lists on
disk, the refinement codes in memory).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from ..errors import ConfigError, require
from ..types import SegmentedVectors
from .base import IndexConfig, Indexer, Searcher
from .shards import Shard

INDEX_FILE = "index.faiss"
IVF_DATA_FILE = "index.ivfdata"  # on_disk: the merged inverted lists, found beside INDEX_FILE
PARTS_DIR = "parts"  # sharded: one sub-index per shard, parts/000000.faiss, ...


def _faiss():
    return require("faiss", "faiss-cpu", "the Faiss index")


def set_search_threads(threads: int) -> None:
    """Faiss's OpenMP threads (one per core by default: several processes on one machine each spin that many);
    nothing to do where faiss-cpu is not installed."""
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(threads)


def faiss_contrib_ondisk():
    return require("faiss.contrib.ondisk", "faiss-cpu", "the on-disk Faiss index")


DEFAULT_K_FACTOR = 4  # refined indexes: candidates re-ranked per hit asked for when k_factor is not set


def _refined(factory: str, refine: str | None) -> str:
    """The factory string with ``refine`` as Faiss's ``Refine(...)`` stage (``factory`` itself when None)."""
    if refine is None:
        return factory
    if "Refine(" in factory or factory.endswith(",RFlat"):
        raise ConfigError(f"index_config: factory='{factory}' already refines; leave refine unset or drop the factory's Refine.")
    return f"{factory},Refine({refine})"


def _first_stage(index: Any) -> Any:
    """The index that finds candidates: the base of an ``IndexRefine``, else ``index`` itself."""
    faiss = _faiss()
    return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index


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
        factory = _refined(config.factory, config.refine)
        try:
            self.index = faiss.index_factory(self.dim, factory, self.metric)
        except RuntimeError as exc:
            option = "factory" if config.refine is None else "factory / refine"
            raise ConfigError(f"index_config.{option}: '{factory}' is not a valid Faiss factory string: {exc}") from None
        if config.sharded and config.on_disk:
            raise ConfigError("index_config: choose one of sharded (one sub-index per shard) and on_disk (one merged index on disk), not both.")
        if config.on_disk and faiss.try_extract_index_ivf(self.index) is None:
            raise ConfigError(f"index_config.on_disk needs an IVF factory (e.g. 'IVF4096,PQ32'), not '{config.factory}'.")
        self._pending: list[np.ndarray] = []  # vectors held back until an untrained index can be trained
        self._pending_count = 0
        self._part: Any = None  # the sub-index of the shard being added (sharded / on_disk builds)
        self._parts = 0

    def add_shards(self, shards: Sequence[Shard]) -> None:
        """Train on a sample spread over every shard, then add the shards one by one (or one sub-index each)."""
        if shards and not self.index.is_trained:
            self._train(self._training_sample(shards))
        if not (self.config.sharded or self.config.on_disk):
            super().add_shards(shards)
            return
        faiss = _faiss()
        (self.tmp / PARTS_DIR).mkdir(exist_ok=True)
        for shard in shards:
            self._part = faiss.clone_index(self.index)  # trained and empty
            super().add_shards([shard])
            faiss.write_index(self._part, str(self.tmp / PARTS_DIR / f"{self._parts:06d}.faiss"))
            self._part, self._parts = None, self._parts + 1

    def _training_sample(self, shards: Sequence[Shard]) -> np.ndarray:
        """``train_size`` vectors taken evenly from every shard: the first shards alone are not a fair sample
        (the corpus streams in length-sorted windows)."""
        total = sum(shard.count for shard in shards)
        share = min(1.0, self.config.train_size / max(total, 1))
        sample = []
        for shard in shards:
            # dense shards are memory-mapped: only the sampled rows are read
            parts = [shard.vectors()] if shard.kind == "dense" else (embeddings for _, embeddings in shard.batches())
            for embeddings in parts:
                if isinstance(embeddings, SegmentedVectors):
                    embeddings = embeddings.flat()[0]
                rows = np.unique(np.linspace(0, len(embeddings) - 1, max(1, round(len(embeddings) * share))).astype(np.int64))
                sample.append(_as_float32(np.asarray(embeddings[rows]) if isinstance(embeddings, np.ndarray) else embeddings[rows], self.normalize))
        return np.concatenate(sample)

    def _train(self, sample: np.ndarray) -> None:
        try:
            self.index.train(sample)
        except RuntimeError as exc:
            raise ConfigError(
                f"Faiss could not train '{self.config.factory}' on {len(sample)} vectors ({exc}); "
                "use fewer IVF lists or a 'Flat' index for a collection this small."
            ) from None

    def _add(self, embeddings: Tensor) -> None:
        vectors = _as_float32(embeddings, self.normalize)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ConfigError(f"expected vectors of dim {self.dim}, got shape {tuple(vectors.shape)}")
        if self._part is not None:
            self._part.add(vectors)
            return
        if self.index.is_trained:
            self.index.add(vectors)
            return
        self._pending.append(vectors)
        self._pending_count += len(vectors)
        if self._pending_count >= self.config.train_size:
            self._train_and_flush()

    def _train_and_flush(self) -> None:
        sample = np.concatenate(self._pending)
        self._train(sample)
        self.index.add(sample)
        self._pending, self._pending_count = [], 0

    def _merge_refinement(self, parts: list[str]) -> None:
        """Append every part's refinement codes to the merged index's (``merge_ondisk`` merges only the IVF)."""
        faiss = _faiss()
        refinement = faiss.downcast_index(self.index.refine_index)
        for path in parts:  # one part in memory at a time; its codes are copied as they are (a read-back index's
            part = faiss.read_index(path)  # type differs, so merge_from refuses it)
            codes = faiss.downcast_index(part.refine_index)  # a view into `part`, which must outlive it
            refinement.add_sa_codes(faiss.vector_to_array(codes.codes).reshape(codes.ntotal, codes.code_size))
            del codes, part
        self.index.ntotal = refinement.ntotal

    def _write(self, directory: Path) -> dict[str, Any]:
        faiss = _faiss()
        fields: dict[str, Any] = {"dim": self.dim, "metric": "l2" if self.metric == faiss.METRIC_L2 else "ip"}
        if self._parts and self.config.sharded:
            return {**fields, "parts": self._parts}
        if self._parts:  # on_disk: the parts' inverted lists merged into one file, then the parts go
            parts = [str(directory / PARTS_DIR / f"{number:06d}.faiss") for number in range(self._parts)]
            faiss_contrib_ondisk().merge_ondisk(self.index, parts, str(directory / IVF_DATA_FILE), shift_ids=True)
            if isinstance(self.index, faiss.IndexRefine):  # the refinement codes, in part order (= merged id order)
                self._merge_refinement(parts)
            faiss.write_index(self.index, str(directory / INDEX_FILE))
            shutil.rmtree(directory / PARTS_DIR)
            return {**fields, "on_disk": True}
        if self._pending:
            self._train_and_flush()
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        return fields


class FaissSearcher(Searcher):
    config: FaissIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: FaissIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        faiss = _faiss()
        self.normalize = manifest["fingerprint"]["similarity"] == "cosine"
        self.l2 = manifest.get("metric") == "l2"
        self.euclidean = manifest["fingerprint"]["similarity"] == "euclidean"
        if manifest.get("parts"):
            self._parts = [faiss.read_index(str(self.directory / PARTS_DIR / f"{n:06d}.faiss")) for n in range(manifest["parts"])]
            self.index = faiss.IndexShards(int(manifest["dim"]), False, True)  # successive ids: part n's follow n-1's
            self.index.metric_type = faiss.METRIC_L2 if self.l2 else faiss.METRIC_INNER_PRODUCT  # how top-k merge
            for part in self._parts:
                self._set_search_parameters(part, config)
                self.index.add_shard(part)
        else:
            # on_disk: the inverted lists are memory-mapped from index.ivfdata beside it (wherever the directory moved)
            flags = faiss.IO_FLAG_ONDISK_SAME_DIR if manifest.get("on_disk") else 0
            self.index = faiss.read_index(str(self.directory / INDEX_FILE), flags)
            self._set_search_parameters(self.index, config)

    @staticmethod
    def _set_search_parameters(index: Any, config: FaissIndexConfig) -> None:
        faiss = _faiss()
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = config.nprobe or max(ivf.nprobe, 32)
        first = _first_stage(index)
        if config.ef_search is not None and hasattr(first, "hnsw"):
            first.hnsw.efSearch = config.ef_search
        if isinstance(index, faiss.IndexRefine):
            index.k_factor = float(config.k_factor or DEFAULT_K_FACTOR)
        elif config.k_factor is not None:
            raise ConfigError(f"k_factor={config.k_factor} needs a refined index (built with refine, e.g. 'SQ8'); this one ranks by its codes alone.")

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
        sharded: built from shards, keep one sub-index per shard (any factory) instead of one index.
        on_disk: built from shards, merge the shards' inverted lists into ``index.ivfdata`` on disk, which
            searching memory-maps (IVF factories only): memory then holds neither vectors nor IVF codes.
        refine: a second code of every vector that re-scores the first stage's candidates (Faiss's
            ``Refine(...)``): ``"SQ8"`` (1 byte a dimension, 4x smaller than float32), ``"SQfp16"`` (2 bytes),
            ``"Flat"`` (the float32 vectors). None: rank by the factory's codes alone. The same as appending
            ``,Refine(SQ8)`` to ``factory``; the refinement codes are held in memory at search time.
        k_factor: refined indexes only, at search time: re-rank ``k_factor * k`` candidates (None: 4).
    """

    engine: ClassVar[str] = "faiss"
    indexer_class: ClassVar[type[Indexer]] = FaissIndexer
    searcher_class: ClassVar[type[Searcher]] = FaissSearcher

    factory: str = "Flat"
    train_size: int = 262_144
    nprobe: int | None = None
    ef_search: int | None = None
    sharded: bool = False
    on_disk: bool = False
    refine: str | None = None
    k_factor: int | None = None


__all__ = ["FaissIndexConfig", "FaissIndexer", "FaissSearcher"]
