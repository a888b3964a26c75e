"""Checkpoints that are also model directories: every ``name.ckpt`` gets a ``name/`` that ``from_pretrained`` loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


def model_dir(checkpoint_path: str | os.PathLike[str]) -> Path:
    """The model directory saved beside a checkpoint file: its path without ``.ckpt``."""
    path = Path(checkpoint_path)
    return path.with_suffix("") if path.suffix == ".ckpt" else path.with_name(path.name + ".model")


class ModelDirCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (all its options: ``every_n_train_steps``, ``monitor``, ``save_last``, ...)
    that also writes each checkpoint as a model directory (backbone, tokenizer, ``boltir_config.json``).

    The ``.ckpt`` file holds the optimiser and loop state for ``boltir fit --ckpt_path last``; the directory is
    the trained model, for ``index``/``search``/``re_rank`` or ``BiEncoderModule("<dir>")``. Directories are
    removed with their checkpoints when ``save_top_k`` drops them. With ``save_last`` the final step of training
    is always saved as ``last``, whatever the saving interval.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning writes `last` at the end only when it never saved before; `last` should be the final model.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero:
            trainer.lightning_module.save_pretrained(model_dir(filepath))
        trainer.strategy.barrier()

    @staticmethod
    def _link_checkpoint(trainer: pl.Trainer, filepath: str, linkpath: str) -> None:
        ModelCheckpoint._link_checkpoint(trainer, filepath, linkpath)
        source, link = model_dir(filepath), model_dir(linkpath)
        if trainer.is_global_zero and source.resolve() != link.resolve():
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                shutil.rmtree(link)
            os.symlink(os.path.relpath(source, link.parent), link)
        trainer.strategy.barrier()

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._remove_checkpoint(trainer, filepath)
        directory = model_dir(filepath)
        if trainer.is_global_zero:
            if directory.is_symlink():
                directory.unlink()
            elif directory.is_dir():
                shutil.rmtree(directory)


__all__ = ["ModelDirCheckpoint", "model_dir"]
