"""What every engine shares: the index directory layout, its manifest, and the Indexer/Searcher interface.

An index directory holds the engine's files, ``doc_ids.txt`` (one id per stored vector, in insertion order) and
``manifest.json`` (engine, settings, the model that built it, count, dim, boltir version). A model that splits
long documents stores one vector per segment: ``doc_ids.txt`` then repeats a document's id for each of its
segments and the manifest says ``"segments": true`` (see :mod:`boltir.index.segments` for searching it). How the
files reach ``index_dir`` (versions, one pointer, a lock, sizes and hashes) is :mod:`boltir.index.storage`'s job:
a build killed at any point leaves the old index or the new one, complete.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from importlib.metadata import PackageNotFoundError, version

import numpy as np
from torch import Tensor

from ..data.run import Run
from .._io import write_failure, write_reason
from ..errors import ConfigError, IndexMismatchError, WriteError
from ..types import SegmentedVectors
from .storage import MANIFEST as MANIFEST
from .storage import IndexBuild, resolve_index
from .storage import read_manifest as read_manifest
from .shards import Shard

DOC_IDS = "doc_ids.txt"
FORMAT_VERSION = 1


def engines_for(representation: str) -> str:
    """The engine configs that store ``representation`` vectors (named in errors), read off each config's indexer."""
    found, pending = [], list(IndexConfig.__subclasses__())
    while pending:
        config = pending.pop(0)
        pending.extend(config.__subclasses__())
        indexer = vars(config).get("indexer_class")
        if indexer is not None and indexer.representation == representation:
            found.append(config.__name__)
    return " or ".join(sorted(found)) or "an index config for them"


def boltir_version() -> str:
    try:
        return version("boltir")
    except PackageNotFoundError:
        return "0+local"


def model_fingerprint(model: Any) -> dict[str, Any]:
    """The parts of a model that decide what its stored vectors mean (a searcher's model must match them)."""
    return {"representation": getattr(model, "representation", "dense"), **model.index_fingerprint()}


@dataclasses.dataclass
class IndexConfig:
    """Declarative settings of one engine; ``engine`` names it in the manifest, and each engine's config names its
    ``indexer_class`` and ``searcher_class`` in its class body."""

    engine: ClassVar[str] = "base"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IndexConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for {cls.__name__}; valid options are {sorted(known)}.")
        return cls(**values)

    indexer_class: ClassVar[type[Indexer]]
    searcher_class: ClassVar[type[Searcher]]

    def indexer(self, directory: str | os.PathLike[str], model: Any) -> Indexer:
        """A fresh indexer writing this engine's index into ``directory``; it holds the directory's lock until
        ``finish()`` or ``abort()``, and gives it back if the engine's own constructor refuses its settings."""
        indexer = self.indexer_class.__new__(self.indexer_class)
        try:
            indexer.__init__(directory, self, model)  # type: ignore[misc]
        except BaseException:
            Indexer.abort(indexer)  # the base's: an engine's abort may need what its constructor never set
            raise
        return indexer

    def searcher(self, directory: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> Searcher:
        """A searcher over the complete index in ``directory``."""
        live = resolve_index(directory)
        return self.searcher_class(live, self, manifest or read_manifest(live))


class Indexer(ABC):
    """Receives vectors batch by batch (a corpus streams through it) and writes the index atomically."""

    representation: ClassVar[str] = "dense"

    def __init__(self, directory: str | os.PathLike[str], config: IndexConfig, model: Any) -> None:
        self.directory = Path(directory)
        self.config = config
        self.model_description = model.describe()
        self.fingerprint = model_fingerprint(model)
        if self.fingerprint["representation"] != self.representation:
            raise IndexMismatchError(
                f"the {config.engine} engine stores {self.representation} vectors, but the model makes "
                f"{self.fingerprint['representation']} ones: choose "
                f"{engines_for(self.fingerprint['representation'])} as index_config."
            )
        self.build = IndexBuild(self.directory).start()  # locks index_dir and proves it writable, before any encoding
        self.tmp = self.build.staging
        self._ids = open(self.tmp / DOC_IDS, "w", encoding="utf-8")
        self.count = 0  # vectors stored
        self.documents = 0
        self.segmented = False

    def add(self, doc_ids: list[str], embeddings: Tensor | SegmentedVectors) -> None:
        """Add a batch of documents' vectors (or, for :class:`SegmentedVectors`, each document's segment vectors)."""
        if len(doc_ids) != len(embeddings):
            raise ValueError(f"{len(doc_ids)} ids but {len(embeddings)} vectors")
        self.documents += len(doc_ids)
        if isinstance(embeddings, SegmentedVectors):
            self.segmented = True
            embeddings, rows = embeddings.flat()
            doc_ids = [doc_ids[row] for row in rows.tolist()]
        try:
            self._add(embeddings)
            for doc_id in doc_ids:
                self._ids.write(doc_id + "\n")
        except OSError as exc:  # a full disk: the caller aborts, the old index stays live
            raise write_failure(self.tmp, exc, f"the index at {self.directory} is unchanged") from exc
        self.count += len(doc_ids)

    def add_shards(self, shards: Sequence[Shard]) -> None:
        """Add complete shards one after another: memory holds one shard beside what the engine itself keeps."""
        for shard in shards:
            for doc_ids, embeddings in shard.batches():
                self.add(doc_ids, embeddings)

    @abstractmethod
    def _add(self, embeddings: Tensor) -> None: ...

    @abstractmethod
    def _write(self, directory: Path) -> dict[str, Any]:
        """Write the engine's files into ``directory``; return extra manifest fields (dim, ...)."""

    def finish(self) -> Path:
        """Write everything, then move the directory into place; only now does a searcher accept it."""
        self._ids.close()
        try:
            if self.count == 0:
                raise ConfigError("no documents were indexed: the corpus is empty or every document was skipped.")
            manifest = {
                "format_version": FORMAT_VERSION,
                "engine": self.config.engine,
                "index_config": self.config.to_dict(),
                "boltir_version": boltir_version(),
                "count": self.count,
                "documents": self.documents,
                **({"segments": True} if self.segmented else {}),
                "model": self.model_description,
                "fingerprint": self.fingerprint,
                **self._write(self.tmp),
            }
            self.build.commit(manifest)
        except BaseException as exc:
            self.abort()
            reason = write_reason(exc)  # a full disk while the engine wrote its files
            if reason is None:
                raise
            raise WriteError(
                f"could not write the {self.config.engine} index files in {self.tmp}: {reason}; the index at {self.directory} is unchanged."
            ) from exc
        return self.directory

    def abort(self) -> None:
        """Drop the half-built index and release the lock; the old index (if any) stays live."""
        if hasattr(self, "_ids") and not self._ids.closed:
            self._ids.close()
        if hasattr(self, "build"):
            self.build.abort()


def read_doc_ids(directory: Path, count: int) -> np.ndarray:
    with open(directory / DOC_IDS, encoding="utf-8") as handle:
        ids = [line.rstrip("\n") for line in handle]
    if len(ids) != count:
        raise IndexMismatchError(f"{directory / DOC_IDS} holds {len(ids)} ids but the manifest counts {count}: rebuild the index.")
    return np.array(ids, dtype=object)


class Searcher(ABC):
    """Answers ``search(query_vectors, k)`` with a :class:`~boltir.data.run.Run` of each query's top-k documents;
    engines implement :meth:`search_arrays`, the same answer as score and id arrays."""

    def __init__(self, directory: str | os.PathLike[str], config: IndexConfig, manifest: dict[str, Any]) -> None:
        self.directory = resolve_index(directory)
        self.config = config
        self.manifest = manifest
        self.doc_ids = read_doc_ids(self.directory, manifest["count"])

    def check_model(self, model: Any) -> None:
        """Refuse a model whose vectors do not mean what the stored ones mean."""
        built = self.manifest["fingerprint"]
        current = model_fingerprint(model)
        if built.get("representation") != current["representation"]:
            raise IndexMismatchError(
                f"the index at {self.directory} holds {built.get('representation')} vectors ({self.config.engine} engine), "
                f"but {type(model).__name__} makes {current['representation']} ones: search it with the "
                f"{built.get('representation')} model that built it, or index with an engine for {current['representation']} vectors."
            )
        diffs = {k: (built.get(k), current.get(k)) for k in sorted(set(built) | set(current)) if built.get(k) != current.get(k)}
        if diffs:
            details = ", ".join(f"{k}: index {a!r} vs model {b!r}" for k, (a, b) in diffs.items())
            raise IndexMismatchError(
                f"the index at {self.directory} was built by {self.manifest['model'].get('name_or_path')!r}, which does not "
                f"match the searching model ({details}): search with the model that built it, or rebuild the index."
            )

    def search(self, query_embeddings: Any, k: int, query_ids: list[str] | None = None, run_name: str = "boltir") -> Run:
        """The top-k documents of each query as a run; queries are named by ``query_ids`` (by default their
        positions, ``"0"``, ``"1"``, ...)."""
        scores, doc_ids = self.search_arrays(query_embeddings, k)
        query_ids = [str(i) for i in range(len(doc_ids))] if query_ids is None else list(query_ids)
        if len(query_ids) != len(doc_ids):
            raise ConfigError(f"got {len(query_ids)} query ids for {len(doc_ids)} queries.")
        run = Run(name=run_name)
        for query_id, row_scores, row_ids in zip(query_ids, scores, doc_ids):
            run.add(query_id, row_ids, np.asarray(row_scores[: len(row_ids)], dtype=np.float64).tolist())
        return run

    @abstractmethod
    def search_arrays(self, query_embeddings: Any, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Scores ``[Q, <=k]`` (best first) and the matching doc ids for each query."""
