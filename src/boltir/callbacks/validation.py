"""Validation during fit: re-rank ``data.val_datasets`` with the model being trained and log ir-measures."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from ..data.datasets import dataset_name
from ..data.run import Run
from ..eval import evaluate
from ..types import ScoreOutput
from .run_writer import add_scores


class RankingValidation(pl.Callback):
    """Collects the validation step's scores into one run per validation dataset and logs the module's
    ``val_measures`` of each as ``val/<measure>`` (``val/<dataset>/<measure>`` with several datasets).

    boltir's :class:`~boltir.Trainer` attaches one; under DDP each device re-ranks a share of the queries and the
    runs are gathered before evaluation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[int, Run] = {}

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.runs = {}

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if isinstance(outputs, ScoreOutput):
            add_scores(self.runs.setdefault(dataloader_idx, Run(name="validation")), outputs)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        measures = list(getattr(pl_module, "val_measures", ()))
        if not measures:
            return
        loaders = trainer.val_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        for idx, run in sorted(self._gathered(trainer).items()):
            dataset = loaders[idx].dataset
            qrels = getattr(dataset, "qrels", None)
            if not qrels:
                continue
            prefix = "val" if len(loaders) == 1 else f"val/{dataset_name(dataset, idx)}"
            for measure, value in evaluate(run, qrels, measures).items():
                pl_module.log(f"{prefix}/{measure}", value, prog_bar=True)

    def _gathered(self, trainer: pl.Trainer) -> dict[int, Run]:
        """Under DDP each device re-ranked a share of the queries: collect them all on every device."""
        if trainer.world_size == 1:
            return self.runs
        shares: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(shares, {i: r.rankings for i, r in self.runs.items()})
        runs: dict[int, Run] = {}
        for share in shares:
            for idx, rankings in share.items():
                for query_id, ranking in rankings.items():
                    runs.setdefault(idx, Run(name="validation")).add(query_id, ranking.keys(), ranking.values())
        return runs


__all__ = ["RankingValidation"]
