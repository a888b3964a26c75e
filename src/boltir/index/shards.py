"""Vectors on disk in shards, written while a corpus is encoded and read back to build an index.

Every process (GPU) of an indexing run writes its own shards into one shard directory on a path all processes
see: ``rank00003-000017/`` is rank 3's 18th shard. A shard is written into ``<name>.tmp/`` and renamed into
place once its ``shard.json`` is written, so a shard directory without the suffix is complete and a killed run
leaves only complete shards and one partial ``.tmp`` (which :func:`complete_shards` ignores). Memory holds at
most one shard per process, whatever the corpus size. Files are ``.npy`` arrays (read with
``allow_pickle=False``), ids and texts as text; nothing is pickled.

One shard holds one representation:
  - ``dense``: ``vectors.npy`` ``[n, dim]`` float32;
  - ``sparse``: the non-zero term weights in CSR (``indptr.npy``, ``indices.npy``, ``values.npy``) and ``dim``;
  - ``tokens`` / ``segments``: ``vectors.npy`` ``[n, length, dim]`` and ``mask.npy`` ``[n, length]``;
  - ``texts``: ``texts.jsonl`` (lexical engines index the texts themselves).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import IndexMismatchError
from ..types import SegmentedVectors, TokenVectors, cat_batches
from .vectors import sparse_rows

SHARD_FILE = "shard.json"
IDS_FILE = "ids.txt"
_NAME = re.compile(r"^rank(\d{5})-(\d{6})$")
SPARSE_ROWS_PER_BATCH = 1024  # sparse rows are made dense again per batch: 1024 x a 30k vocabulary is 125 MB
KINDS = ("dense", "sparse", "tokens", "segments", "texts")


def shard_kind(embeddings: Any, representation: str) -> str:
    """Which of :data:`KINDS` a batch of a model's output is stored as."""
    if isinstance(embeddings, list):
        return "texts"
    if isinstance(embeddings, SegmentedVectors):
        return "segments"
    if isinstance(embeddings, TokenVectors):
        return "tokens"
    return "sparse" if representation == "sparse" else "dense"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _write_shard(target: Path, ids: list[str], kind: str, embeddings: Any) -> None:
    """Write one shard's files into ``target.tmp`` and rename it to ``target``: the rename marks it complete."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta: dict[str, Any] = {"kind": kind, "count": len(ids)}
    if kind == "texts":
        (tmp / "texts.jsonl").write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in embeddings), encoding="utf-8")
    elif kind == "sparse":
        _save_npy(tmp / "indptr.npy", embeddings.indptr)
        _save_npy(tmp / "indices.npy", embeddings.indices.astype(np.int32))
        _save_npy(tmp / "values.npy", embeddings.values)
        meta["dim"] = embeddings.dim
    elif kind in ("tokens", "segments"):
        vectors, mask = embeddings
        _save_npy(tmp / "vectors.npy", vectors)
        _save_npy(tmp / "mask.npy", mask)
        meta["dim"] = int(vectors.shape[-1])
    else:
        _save_npy(tmp / "vectors.npy", embeddings)
        meta["dim"] = int(embeddings.shape[-1])
    (tmp / IDS_FILE).write_text("".join(doc_id + "\n" for doc_id in ids), encoding="utf-8")
    (tmp / SHARD_FILE).write_text(json.dumps(meta) + "\n")
    os.replace(tmp, target)


class ShardWriter:
    """Collects one process's encoded batches and writes them out every ``shard_size`` documents.

    Batches stay on the model's device until a shard is full (moving them waits for the device, so few large
    moves let it run ahead); the shard then moves to the host in one copy and is written by a background thread
    while encoding goes on. At most one shard waits to be written, so host memory is bounded by two shards.

    Args:
        directory: the shard directory (shared by all processes of the run).
        rank: this process's global rank; its shards are named after it.
        shard_size: documents per shard.
        representation: the model's representation (``dense``, ``sparse``, ``multi-vector``, ...).
    """

    def __init__(self, directory: str | os.PathLike[str], rank: int = 0, shard_size: int = 65_536, representation: str = "dense") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rank, self.shard_size, self.representation = rank, shard_size, representation
        done = [s.sequence for s in complete_shards(self.directory) if s.rank == rank]
        self.next_sequence = max(done, default=-1) + 1  # a resumed run goes on after its complete shards
        self._ids: list[str] = []
        self._parts: list[Any] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="boltir-shards")
        self._pending: Future | None = None
        self.written = 0  # documents in the shards this writer completed

    def add(self, doc_ids: list[str], embeddings: Any) -> None:
        if len(doc_ids) != len(embeddings):
            raise ValueError(f"{len(doc_ids)} ids but {len(embeddings)} vectors")
        self._ids.extend(doc_ids)
        self._parts.append(embeddings)
        if len(self._ids) >= self.shard_size:
            self.flush()

    def _host_arrays(self, kind: str) -> Any:
        """The buffered batches joined and moved to the host as numpy arrays, in one copy per array."""
        if kind == "texts":
            return [text for part in self._parts for text in part]
        joined = cat_batches(self._parts)
        if kind in ("tokens", "segments"):
            return joined.vectors.detach().float().cpu().numpy(), joined.mask.cpu().numpy()
        if kind == "sparse":
            return sparse_rows(joined, int(joined.shape[-1]), "shard")
        return joined.detach().float().cpu().numpy()

    def flush(self) -> None:
        """Write the buffered documents as one shard (in the background); a no-op when none are buffered."""
        if not self._ids:
            return
        kind = shard_kind(self._parts[0], self.representation)
        arrays = self._host_arrays(kind)
        target = self.directory / f"rank{self.rank:05d}-{self.next_sequence:06d}"
        self.wait()  # one shard in flight at most: memory stays bounded when the disk is slower than the GPU
        self._pending = self._pool.submit(_write_shard, target, self._ids, kind, arrays)
        self.written += len(self._ids)
        self.next_sequence += 1
        self._ids, self._parts = [], []

    def wait(self) -> None:
        """Block until the shard being written is on disk (re-raising a failed write)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Write what is buffered and wait for it: every document added is then in a complete shard."""
        try:
            self.flush()
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop the buffered documents and this rank's partial shard; complete shards stay for ``resume``."""
        self._ids, self._parts = [], []
        try:
            self.wait()
        except Exception:  # the run is failing already; its own error is the one to report
            pass
        self._pool.shutdown(wait=True)
        for partial in self.directory.glob(f"rank{self.rank:05d}-*.tmp"):
            shutil.rmtree(partial, ignore_errors=True)


@dataclass(frozen=True)
class Shard:
    """One complete shard on disk."""

    path: Path
    rank: int
    sequence: int
    kind: str
    count: int
    dim: int | None

    def ids(self) -> list[str]:
        ids = (self.path / IDS_FILE).read_text(encoding="utf-8").splitlines()
        if len(ids) != self.count:
            raise IndexMismatchError(f"{self.path / IDS_FILE} holds {len(ids)} ids but {SHARD_FILE} counts {self.count}: delete the shard and index again with resume.")
        return ids

    def array(self, name: str, mmap: bool = False) -> np.ndarray:
        return np.load(self.path / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

    def vectors(self, mmap: bool = True) -> np.ndarray:
        """Dense shards' ``[count, dim]`` float32 vectors (memory-mapped by default: read what you touch)."""
        if self.kind != "dense":
            raise IndexMismatchError(f"{self.path} holds {self.kind} vectors, not dense ones.")
        return self.array("vectors", mmap)

    def batches(self, rows: int | None = None) -> Iterator[tuple[list[str], Any]]:
        """``(ids, embeddings)`` in the form the model made them (tensors, token / segment vectors, texts)."""
        ids = self.ids()
        if self.kind == "texts":
            lines = (self.path / "texts.jsonl").read_text(encoding="utf-8").splitlines()
            yield ids, [json.loads(line) for line in lines]
            return
        if self.kind == "dense":
            yield ids, torch.from_numpy(self.array("vectors"))
            return
        if self.kind in ("tokens", "segments"):
            kind = SegmentedVectors if self.kind == "segments" else TokenVectors
            yield ids, kind(torch.from_numpy(self.array("vectors")), torch.from_numpy(self.array("mask")))
            return
        indptr, indices, values = self.array("indptr"), self.array("indices", mmap=True), self.array("values", mmap=True)
        step = rows or SPARSE_ROWS_PER_BATCH
        for start in range(0, self.count, step):
            stop = min(start + step, self.count)
            lo, hi = int(indptr[start]), int(indptr[stop])
            weights = np.zeros((stop - start, int(self.dim or 0)), dtype=np.float32)
            rows_of = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
            weights[rows_of, np.asarray(indices[lo:hi], dtype=np.int64)] = values[lo:hi]
            yield ids[start:stop], torch.from_numpy(weights)


def complete_shards(directory: str | os.PathLike[str]) -> list[Shard]:
    """The complete shards in ``directory``, in (rank, sequence) order: the order an index built from them has."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    shards = []
    for path in sorted(directory.iterdir()):
        match = _NAME.match(path.name)
        if match is None or not (path / SHARD_FILE).is_file():
            continue
        try:
            meta = json.loads((path / SHARD_FILE).read_text())
        except json.JSONDecodeError as exc:
            raise IndexMismatchError(f"{path / SHARD_FILE} is corrupt ({exc}): delete {path} and index again with resume.") from exc
        shards.append(Shard(path, int(match[1]), int(match[2]), meta["kind"], int(meta["count"]), meta.get("dim")))
    return shards


def shard_doc_ids(shards: Sequence[Shard]) -> Iterator[str]:
    """Every document id the shards hold (what a resumed run skips)."""
    for shard in shards:
        yield from shard.ids()


__all__ = ["Shard", "ShardWriter", "complete_shards", "shard_doc_ids", "shard_kind"]
