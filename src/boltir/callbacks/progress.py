"""boltir's progress bar: Lightning's Rich bar, counting index, search and re-rank work in the unit users think in.

Lightning counts batches; a re-ranking batch of 64 queries holds 6,400 query-document pairs, minutes of work on a
CPU, so its bar would sit still that long. Here the bar counts documents (index), queries (search) or pairs
(re-rank), and the module reports each forward pass as it finishes (``BoltirModule.on_items_done``), so the bar
moves every pass (about a second of work on a CPU at the default ``encode_batch_size``).
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import CustomBarColumn, CustomTimeColumn
from rich.progress import ProgressColumn, Task, TextColumn
from rich.text import Text

from ..data.batches import DocBatch, QueryBatch, RankBatch
from ..data.datasets import DocDataset, QueryDataset, RunDataset

# what a dataset's bar counts, and what it says it is doing
_UNITS: list[tuple[type, str, str]] = [
    (DocDataset, "documents", "Encoding documents"),
    (QueryDataset, "queries", "Searching"),
    (RunDataset, "pairs", "Re-ranking"),
]


def work_of(dataset: Any, world_size: int = 1) -> tuple[str, str, float]:
    """(unit, description, total) of one process's share of a predict dataset; an unknown size is ``inf``."""
    while not isinstance(dataset, tuple(kind for kind, _, _ in _UNITS)) and hasattr(dataset, "dataset"):
        dataset = dataset.dataset  # the DataModule's wrappers (a length-sorted stream) hold the dataset itself
    for kind, unit, description in _UNITS:
        if isinstance(dataset, kind):
            break
    else:
        return "batches", "Predicting", math.inf
    if isinstance(dataset, RunDataset):
        items = sum(len(sample.doc_ids) for sample in dataset.samples)
    else:
        items = len(dataset)
    return unit, description, math.ceil(items / world_size)  # each process (GPU) reads about its share


def batch_items(batch: Any) -> int:
    """The documents, queries or query-document pairs in a predict batch (1 for anything else)."""
    if isinstance(batch, (DocBatch, QueryBatch)):
        return len(batch.texts)
    if isinstance(batch, RankBatch):
        return sum(len(docs) for docs in batch.docs)
    return 1


class _Completed(ProgressColumn):
    """``done/total unit`` (Lightning's column shows the bare numbers of batches)."""

    def __init__(self, style: Any) -> None:
        self.style = style
        super().__init__()

    def render(self, task: Task) -> Text:
        total = "--" if task.total in (None, math.inf) else f"{int(task.total):,}"
        unit = task.fields.get("unit")
        return Text(f"{int(task.completed):,}/{total}" + (f" {unit}" if unit else ""), style=self.style)


class _Speed(ProgressColumn):
    """``N unit/s``: documents, queries or pairs per second (iterations for training steps)."""

    def __init__(self, style: Any) -> None:
        self.style = style
        super().__init__()

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.2f} {task.fields.get('unit', 'it')}/s", style=self.style)


class ProgressBar(RichProgressBar):
    """Lightning's Rich bar; index / search / re-rank bars count documents / queries / pairs and move with every
    forward pass. Training limited by ``max_steps`` alone shows ``Epoch 0``, not Lightning's ``Epoch 0/-2``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_start = 0  # items done before the current batch
        self._batch_end = 0  # ... and once it is done

    def configure_columns(self, trainer: pl.Trainer) -> list:
        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(complete_style=self.theme.progress_bar, finished_style=self.theme.progress_bar_finished,
                            pulse_style=self.theme.progress_bar_pulse),
            _Completed(style=self.theme.batch_progress),
            CustomTimeColumn(style=self.theme.time),
            _Speed(style=self.theme.processing_speed),
        ]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, description=self.epoch_description(trainer))

    def epoch_description(self, trainer: pl.Trainer) -> str:
        """``Epoch N`` or ``Epoch N/M`` (M the last epoch), as wide as "Validation": no flicker between them."""
        max_epochs = trainer.max_epochs
        text = f"Epoch {trainer.current_epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
        return f"{text:{len(self.validation_description)}}"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        if self.is_enabled and hasattr(pl_module, "on_items_done"):
            pl_module.on_items_done = self._advance

    def on_predict_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.is_disabled or self.progress is None:
            return
        if self.has_dataloader_changed(dataloader_idx):
            if self.predict_progress_bar_id is not None:
                self.progress.update(self.predict_progress_bar_id, advance=0, visible=False)
            loaders = trainer.predict_dataloaders
            loader = loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders
            unit, description, total = work_of(loader.dataset, trainer.world_size)
            if self.theme.description:
                description = f"[{self.theme.description}]{description}"
            self.predict_progress_bar_id = self.progress.add_task(description, total=total, unit=unit)
            self._batch_end = 0
        self._batch_start = self._batch_end
        self._batch_end = self._batch_start + batch_items(batch)
        self.refresh()

    def _advance(self, count: int) -> None:
        """A forward pass finished ``count`` items; never past the current batch (a bi-encoder re-ranking reports
        its queries and its documents, which the batch's pairs already count)."""
        task = self._predict_task()
        if task is None or self.progress is None:
            return
        step = min(count, self._batch_end - int(task.completed))
        if step > 0:
            self.progress.update(task.id, advance=step)
            self.refresh()

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.is_disabled or self.progress is None or self.predict_progress_bar_id is None:
            return
        self.progress.update(self.predict_progress_bar_id, completed=self._batch_end)
        self.refresh()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "on_items_done", None) == self._advance:
            pl_module.on_items_done = None
        task = self._predict_task()
        if task is not None and self.progress is not None and task.completed != task.total:
            # empty documents are skipped and DDP shares are estimates: the bar ends where the work did
            self.progress.update(task.id, total=task.completed)
            self.refresh()
        super().on_predict_end(trainer, pl_module)

    def _predict_task(self) -> Task | None:
        if self.progress is None or self.predict_progress_bar_id is None:
            return None
        return next((task for task in self.progress.tasks if task.id == self.predict_progress_bar_id), None)


__all__ = ["ProgressBar", "batch_items", "work_of"]
