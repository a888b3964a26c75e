"""Training order that depends only on (seed, epoch), and a DataLoader that resumes mid-epoch from a checkpoint.

Together they make an interrupted ``fit`` that restarts from its last checkpoint see exactly the batches an
uninterrupted one would have seen (Lightning restarts the epoch otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler


class EpochSampler(Sampler[int]):
    """A shuffled order of the dataset's indices, a function of ``seed`` and the epoch only.

    Lightning calls :meth:`set_epoch` before each epoch; it is passed on to the dataset (when it has
    ``set_epoch``), so per-sample randomness such as negative sampling changes with the epoch too.
    """

    def __init__(self, dataset: Sized, seed: int = 0, shuffle: bool = True) -> None:
        self.dataset, self.seed, self.shuffle = dataset, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_dataset_epoch):
            set_dataset_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(len(self.dataset)))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())

    def __len__(self) -> int:
        return len(self.dataset)


class SkippingBatchSampler(BatchSampler):
    """A BatchSampler that can leave out its first ``skip`` batches once, without loading them."""

    skip: int = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)


def _sampler_epoch(loader: DataLoader) -> int | None:
    sampler = getattr(loader.batch_sampler, "sampler", None) or loader.sampler
    return getattr(sampler, "epoch", None)


class ResumableDataLoader(DataLoader):
    """A DataLoader whose place in the epoch goes into Lightning checkpoints (the ``state_dict`` protocol).

    It counts the batches handed to the loop; restored, it skips that many batches of the same epoch. Lightning
    asks for no batch ahead of time from a loader with a length, so the count is exactly the batches trained on.
    """

    _consumed: int = 0
    _resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: the real iterator (and its worker processes) starts at the first batch, after Lightning
        # has set the epoch, so workers get the dataset of the right epoch.
        resume, self._resume = self._resume, None
        skip = 0
        if resume and resume.get("epoch") == _sampler_epoch(self):
            skip = int(resume.get("consumed", 0))
        batches = self._batches(skip)
        self._consumed = skip
        for batch in batches:
            self._consumed += 1
            yield batch

    def _batches(self, skip: int) -> Iterator[Any]:
        if isinstance(self.batch_sampler, SkippingBatchSampler):
            self.batch_sampler.skip = skip
            return super().__iter__()
        return itertools.islice(super().__iter__(), skip, None)  # a replaced batch sampler: load and drop

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": _sampler_epoch(self), "consumed": self._consumed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict)


__all__ = ["EpochSampler", "ResumableDataLoader", "SkippingBatchSampler"]
