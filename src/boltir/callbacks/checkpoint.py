"""Checkpointing: checkpoints that are also model directories, and the random states that a resume restores."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

RNG_KEY = "boltir_rng_states"  # where checkpoints hold the random states (the key boltir has always used)


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


class RandomState(pl.Callback):
    """Saves the random states (Python, NumPy, torch, CUDA) in every checkpoint and restores them on resume, so a
    resumed run draws the same dropout masks and shuffles; Lightning does not save them. boltir's Trainer attaches one.
    """

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        kind, keys, *rest = np.random.get_state()
        states: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            # as a tensor, so checkpoints still load with weights_only=True
            "numpy": (kind, torch.from_numpy(keys.astype("int64")), *rest),
        }
        if torch.cuda.is_available():
            states["torch.cuda"] = torch.cuda.get_rng_state_all()
        checkpoint[RNG_KEY] = states

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get(RNG_KEY)
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if "torch.cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["torch.cuda"])
        kind, keys, *rest = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), *rest))
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))


__all__ = ["ModelDirCheckpoint", "RandomState", "model_dir"]
