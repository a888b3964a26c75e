"""Late-cache negatives (SeDR): document representations of earlier training batches, reused as extra negatives.

Long documents leave room for few documents per batch, so few in-batch negatives. The cache keeps the
(detached, hence "late": made by an earlier state of the model) vectors of recent batches' documents in a
first-in-first-out queue and offers them as more negatives. Rules that keep it correct:

- it never offers a document that is a positive of the current batch (compared by a stable hash of its key,
  the document's text for :class:`~boltir.modules.BiEncoderModule`);
- it starts empty at every epoch and whenever the model moves to another device;
- under DDP the module enqueues the *gathered* batch, so every rank holds the same cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from ..types import SegmentedVectors, cat_batches

Vectors = Tensor | SegmentedVectors


def stable_keys(ids: Sequence[str]) -> Tensor:
    """``[len(ids)]`` int64 keys, equal for equal strings in every process (Python's ``hash`` is salted per process)."""
    return torch.tensor(
        [int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8).digest(), "little", signed=True) for i in ids],
        dtype=torch.long,
    )


class LateCache:
    """A FIFO queue of at most ``size`` document vectors (plain or segmented), each with its document's key."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ConfigError(f"late_cache_size must be >= 0 (0 turns the cache off), got {size}.")
        self.size = size
        self.keys: Tensor | None = None
        self.vectors: Vectors | None = None
        self.epoch: int | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    def clear(self) -> None:
        self.keys, self.vectors = None, None

    def sync(self, epoch: int, device: torch.device) -> None:
        """Drop everything at a new epoch, or when the model now runs on another device than the cached vectors."""
        if epoch != self.epoch or (self.vectors is not None and self.vectors.device != torch.device(device)):
            self.clear()
        self.epoch = epoch

    def negatives(self, exclude: Tensor) -> Vectors | None:
        """The cached documents whose key is not in ``exclude`` (the current batch's positives); None if none is left."""
        if self.keys is None or self.vectors is None:
            return None
        keep = ~torch.isin(self.keys, exclude.to(self.keys.device))
        if not bool(keep.any()):
            return None
        return self.vectors[keep]

    def enqueue(self, keys: Tensor, vectors: Vectors) -> None:
        """Add a batch of documents (gathered over devices under DDP); the oldest leave once ``size`` is exceeded."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys but {len(vectors)} vectors")
        if self.size == 0:
            return
        vectors = vectors.detach()
        keys = keys.to(vectors.device)
        if self.keys is not None and self.vectors is not None:
            keys = torch.cat([self.keys, keys])
            vectors = cat_batches([self.vectors, vectors])
        self.keys, self.vectors = keys[-self.size :], vectors[-self.size :]


__all__ = ["LateCache", "stable_keys"]
