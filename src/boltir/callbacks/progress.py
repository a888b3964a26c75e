"""boltir's progress bar: Lightning's Rich bar, with a training description that makes sense without an epoch limit."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Training limited by ``max_steps`` alone runs with ``max_epochs=-1``; Lightning would show ``Epoch 0/-2``."""

    def _get_train_description(self, current_epoch: int) -> str:
        max_epochs = self.trainer.max_epochs
        text = f"Epoch {current_epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
        return f"{text:{len(self.validation_description)}}"  # as wide as "Validation": no flicker between them
