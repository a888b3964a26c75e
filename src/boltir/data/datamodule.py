"""The Lightning DataModule: batches of documents, queries or re-ranking candidates (and, for ``fit``, training tuples)."""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from ..errors import ConfigError, check_positive
from .batches import Doc, collate
from .samplers import EpochSampler, ResumableDataLoader, SkippingBatchSampler


class LengthSorted(IterableDataset):
    """Re-orders a stream in windows of ``window`` samples by text length, so batches carry little padding.

    Order does not matter when indexing, and sorting a bounded window keeps memory bounded on any corpus.
    """

    def __init__(self, dataset: IterableDataset, window: int) -> None:
        super().__init__()
        self.dataset, self.window = dataset, window

    def __iter__(self) -> Iterator[Any]:
        buffer: list[Doc] = []
        for sample in self.dataset:
            buffer.append(sample)
            if len(buffer) >= self.window:
                yield from sorted(buffer, key=lambda s: len(s.text), reverse=True)
                buffer = []
        yield from sorted(buffer, key=lambda s: len(s.text), reverse=True)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    @property
    def process_shard(self) -> tuple[int, int]:
        return getattr(self.dataset, "process_shard", (0, 1))


class StreamLoader(DataLoader):
    """A DataLoader over a stream its workers (and processes) shard by position (as DocDataset does).

    Every worker ends with its own partial batch, so there are up to ``num_workers`` more batches than
    ``ceil(len / batch_size)``; Lightning stops after ``len(loader)`` batches, so the count must include them.
    """

    def __len__(self) -> int:
        count, workers, size = len(self.dataset), max(1, self.num_workers), self.batch_size or 1  # type: ignore[arg-type]
        rank, world = getattr(self.dataset, "process_shard", (0, 1))
        shards = [rank * workers + w for w in range(workers)]  # as data.datasets.stream_shard numbers them
        return sum(math.ceil(math.ceil((count - s) / (workers * world)) / size) for s in shards if s < count)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, as a batch scheduler sets it), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def init_worker(worker_id: int) -> None:
    """Workers are the parallelism: each tokenises on one core (and HF tokenizers stop warning about forks).

    ``gc.freeze()``: a forked worker shares the main process's memory until it writes to it, and a full garbage
    collection writes to every object it traverses, inherited ones too (measured: one collection made a worker copy
    126 MiB of MiniLM's process; 15 workers on an H200 machine stepped up by ~2 GiB at once). Frozen objects are
    never traversed; what the worker allocates itself is collected as usual.
    """
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    gc.freeze()


class TransformedCollate:
    """Collate, then apply the module's batch transform (tokenisation) inside the DataLoader's worker processes."""

    def __init__(self, collate_fn: Callable[[list], Any], transform: Callable[[Any], Any]) -> None:
        self.collate_fn, self.transform = collate_fn, transform

    def __call__(self, samples: list) -> Any:
        return self.transform(self.collate_fn(samples))


class DataModule(pl.LightningDataModule):
    """Serves ``inference_datasets`` to index/search/re-rank, and ``train_dataset`` and ``val_datasets`` to ``fit``.

    Args:
        inference_datasets: DocDataset (index), QueryDataset (search) or RunDataset (re-rank) instances.
        train_dataset: training lists: TupleDataset, RunTupleDataset or MixedTupleDataset.
        val_datasets: RunDataset instances re-ranked during ``fit`` to log ir-measures metrics.
        batch_size: training batch size (queries per batch).
        inference_batch_size: texts (or queries, for re-ranking) per inference batch.
        num_workers: DataLoader worker processes (they read and tokenise). None: none on a CPU (the model
            needs the cores), and on a GPU the process's share of the machine's cores less one, at most 16.
        sort_window: batches of a streamed corpus are formed from windows of this many length-sorted documents
            (length buckets: little padding, and memory bounded on any corpus).
        pin_memory: page-lock batches so copies to the GPU overlap its work. None: on when the device is CUDA.
        prefetch_factor: batches each worker prepares ahead (only with workers).

    The module being run sets ``batch_transform`` (see ``BoltirModule.setup``): batches are then tokenised in
    the workers, beside the accelerator's work, and page-locked so copies to a GPU overlap its computation.
    """

    def __init__(
        self,
        inference_datasets: Sequence[Dataset] | Dataset | None = None,
        train_dataset: Dataset | None = None,
        val_datasets: Sequence[Dataset] | Dataset | None = None,
        batch_size: int = 32,
        inference_batch_size: int = 64,
        num_workers: int | None = None,
        sort_window: int = 4096,
        pin_memory: bool | None = None,
        prefetch_factor: int = 4,
    ) -> None:
        super().__init__()
        if isinstance(inference_datasets, Dataset):
            inference_datasets = [inference_datasets]
        self.inference_datasets = list(inference_datasets or [])
        self.train_dataset = train_dataset
        self.val_datasets = [val_datasets] if isinstance(val_datasets, Dataset) else list(val_datasets or [])
        self.batch_size = check_positive("data.batch_size", batch_size)
        self.inference_batch_size = check_positive("data.inference_batch_size", inference_batch_size)
        self.num_workers = num_workers
        self.sort_window = sort_window
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self.batch_transform: Callable[[Any], Any] | None = None

    def _process_shard(self) -> tuple[int, int]:
        """(rank, world size) of this process: under DDP each process reads its own share of a stream."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _on_cuda(self) -> bool:
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _pin_memory(self) -> bool:
        return self._on_cuda() if self.pin_memory is None else self.pin_memory

    def _workers(self) -> int:
        """``num_workers``, or its default: a GPU process's share of the cores less its own, a CPU process none."""
        if self.num_workers is not None:
            return self.num_workers
        if not self._on_cuda():
            return 0
        trainer = getattr(self, "trainer", None)
        local_processes = max(1, trainer.world_size // max(1, trainer.num_nodes)) if trainer is not None else 1
        return max(0, min(16, available_cores() // local_processes - 1))

    def _worker_options(self) -> dict[str, Any]:
        workers = self._workers()
        options: dict[str, Any] = {"num_workers": workers, "pin_memory": self._pin_memory()}
        if workers:
            options.update(worker_init_fn=init_worker, prefetch_factor=self.prefetch_factor)
        return options

    def _collate(self, dataset: Dataset) -> Callable[[list], Any]:
        """The dataset's collate function (or :func:`collate`), followed by the module's batch transform."""
        collate_fn = getattr(dataset, "collate", None) or collate
        return collate_fn if self.batch_transform is None else TransformedCollate(collate_fn, self.batch_transform)

    def _loader(self, dataset: Dataset, batch_size: int) -> DataLoader:
        if callable(getattr(dataset, "check_ids", None)):
            dataset.check_ids()  # type: ignore[attr-defined]  # here, once: before any worker starts or text is encoded
        if isinstance(dataset, IterableDataset) and hasattr(dataset, "process_shard"):
            dataset.process_shard = self._process_shard()  # workers inherit it: no process group needed there
        if isinstance(dataset, IterableDataset) and self.sort_window > 1:
            dataset = LengthSorted(dataset, self.sort_window)
        loader = StreamLoader if isinstance(dataset, IterableDataset) else DataLoader
        return loader(
            dataset,
            batch_size=batch_size,
            collate_fn=self._collate(dataset),
            persistent_workers=False,
            **self._worker_options(),
        )

    def predict_dataloader(self) -> list[DataLoader]:
        return [self._loader(d, self.inference_batch_size) for d in self.inference_datasets]

    def test_dataloader(self) -> list[DataLoader]:
        return self.predict_dataloader()

    def train_dataloader(self) -> DataLoader:
        """Shuffled by (seed, epoch) and resumable mid-epoch; the seed is the training set's ``seed``."""
        dataset = self.train_dataset
        if dataset is None:
            raise ConfigError("fit needs data.train_dataset; set it in the config or on the command line.")
        if isinstance(dataset, IterableDataset):
            raise ConfigError("data.train_dataset must be a map-style dataset (TupleDataset, RunTupleDataset, ...).")
        seed = getattr(dataset, "seed", 0)
        return ResumableDataLoader(
            dataset,
            batch_sampler=SkippingBatchSampler(EpochSampler(dataset, seed=seed), self.batch_size, drop_last=False),  # type: ignore[arg-type]
            collate_fn=self._collate(dataset),
            **self._worker_options(),
            # its own generator: starting an epoch then draws nothing from the global one (dropout stays in step)
            generator=torch.Generator().manual_seed(seed),
        )

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader(d, self.inference_batch_size) for d in self.val_datasets]
