"""Re-ranking over Lightning's predict loop: candidate lists are re-scored and written as a new run."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from ..errors import ConfigError
from ..modules.base import ScoreOutput
from .run_writer import RunWriter


class ReRankCallback(RunWriter):
    """Collects the model's scores of each RunDataset batch; writes and evaluates the re-ranked run."""

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, ScoreOutput):
            raise ConfigError("re_rank needs run datasets (RunDataset) in data.inference_datasets.")
        run = self._run(dataloader_idx)
        for query_id, doc_ids, scores in zip(outputs.query_ids, outputs.doc_ids, outputs.scores):
            run.add(query_id, doc_ids, scores.float().cpu().tolist())
