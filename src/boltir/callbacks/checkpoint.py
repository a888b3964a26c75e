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
from lightning.pytorch.plugins.io import CheckpointIO

RNG_KEY = "boltir_rng_states"  # where checkpoints hold the random states (the key boltir has always used)


def model_dir(checkpoint_path: str | os.PathLike[str]) -> Path:
    """The model directory saved beside a checkpoint file: its path without ``.ckpt``."""
    path = Path(checkpoint_path)
    return path.with_suffix("") if path.suffix == ".ckpt" else path.with_name(path.name + ".model")


class _ModelDirWriter(CheckpointIO):
    """The strategy's checkpoint I/O, also writing (and removing) each checkpoint's model directory.

    Lightning calls it on rank 0 for every checkpoint the trainer saves or removes, with the model in the state
    being saved, so the directory always matches its ``.ckpt`` file (a public plugin hook: no private API).
    """

    def __init__(self, inner: CheckpointIO, trainer: pl.Trainer) -> None:
        self.inner, self.trainer = inner, trainer
        self.saved_steps: dict[str, int] = {}  # resolved checkpoint path -> the global step it holds

    def saved_step(self, path: str) -> int | None:
        """The global step of the checkpoint at ``path`` (through a link), if this writer saved it."""
        return self.saved_steps.get(str(Path(path).resolve())) if path else None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).is_symlink():  # a `last` link being replaced by a file: never write through the link
            Path(path).unlink()
        self.inner.save_checkpoint(checkpoint, path, *args, **kwargs)
        directory = model_dir(path)
        _remove_model_dir(directory)
        self.trainer.lightning_module.save_pretrained(directory)
        self.saved_steps[str(Path(path).resolve())] = self.trainer.global_step

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:  # the inner I/O's defaults
        return self.inner.load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        if not Path(path).is_symlink():  # removing a link leaves its target
            self.saved_steps.pop(str(Path(path).resolve()), None)
        self.inner.remove_checkpoint(path)
        _remove_model_dir(model_dir(path))

    def teardown(self) -> None:
        self.inner.teardown()


def _remove_model_dir(directory: Path) -> None:
    if directory.is_symlink() or directory.is_file():
        directory.unlink()
    elif directory.is_dir():
        shutil.rmtree(directory)


class ModelDirCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (all its options: ``every_n_train_steps``, ``monitor``, ``save_last``, ...)
    that also writes each checkpoint as a model directory (backbone, tokenizer, ``boltir_config.json``).

    The ``.ckpt`` file holds the optimiser and loop state for ``boltir fit --ckpt_path last``; the directory is
    the trained model, for ``index``/``search``/``re_rank`` or ``BiEncoderModule("<dir>")``. Directories are
    removed with their checkpoints when ``save_top_k`` drops them, and a ``last`` link (``save_last="link"``) has a
    linked directory. With ``save_last`` the final step of training is always saved as ``last``, whatever the
    saving interval. While it is attached, every checkpoint the trainer saves gets its model directory.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not isinstance(trainer.strategy.checkpoint_io, _ModelDirWriter):
            trainer.strategy.checkpoint_io = _ModelDirWriter(trainer.strategy.checkpoint_io, trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        writer = trainer.strategy.checkpoint_io
        if isinstance(writer, _ModelDirWriter):
            trainer.strategy.checkpoint_io = writer.inner
        super().teardown(trainer, pl_module, stage)

    # ModelCheckpoint links `last` to the newest checkpoint without saving (save_last="link"): link its directory too
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, *args, **kwargs)
        self._link_last_model_dir(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._link_last_model_dir(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._link_last_model_dir(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        # `last` should be the final model; Lightning writes it at the end only when it never saved before
        writer = trainer.strategy.checkpoint_io
        stale = bool(self.save_last) and not trainer.fast_dev_run and isinstance(writer, _ModelDirWriter) \
            and writer.saved_step(self.last_model_path) != trainer.global_step
        if trainer.strategy.broadcast(stale, src=0):  # the writer's record lives on rank 0
            self.last_model_path = self.last_model_path or os.path.join(
                self.dirpath or ".", self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
            trainer.save_checkpoint(self.last_model_path, self.save_weights_only)

    def _link_last_model_dir(self, trainer: pl.Trainer) -> None:
        last = Path(self.last_model_path) if self.last_model_path else None
        if not trainer.is_global_zero or last is None or not last.is_symlink():
            return
        source, link = model_dir(last.resolve()), model_dir(last)
        if link.is_symlink() and link.resolve() == source.resolve():
            return
        _remove_model_dir(link)
        os.symlink(os.path.relpath(source, link.parent), link)


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
