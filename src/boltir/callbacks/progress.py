"""boltir's progress bar: Lightning's Rich bar, with a training description that makes sense without an epoch limit."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Training limited by ``max_steps`` alone runs with ``max_epochs=-1``; Lightning would show ``Epoch 0/-2``."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, description=self.epoch_description(trainer))

    def epoch_description(self, trainer: pl.Trainer) -> str:
        """``Epoch N`` or ``Epoch N/M`` (M the last epoch), as wide as "Validation": no flicker between them."""
        max_epochs = trainer.max_epochs
        text = f"Epoch {trainer.current_epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
        return f"{text:{len(self.validation_description)}}"
