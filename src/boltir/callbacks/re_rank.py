"""Re-ranking over Lightning's predict loop: candidate lists are re-scored and written as a new run."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from ..errors import ConfigError
from ..types import ScoreOutput
from .run_writer import RunWriter, add_scores


class ReRankCallback(RunWriter):
    """Collects the model's scores of each RunDataset batch; writes and evaluates the re-ranked run."""

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, ScoreOutput):
            raise ConfigError("re_rank needs run datasets (RunDataset) in data.inference_datasets.")
        add_scores(self._run(dataloader_idx), outputs)
