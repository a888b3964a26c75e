"""``boltir fit|index|search|re_rank``: Lightning's CLI over boltir's Trainer (imported only when one of these
commands runs; ``boltir.cli.main`` dispatches). Any option of a config can be overridden."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any

from jsonargparse import set_parsing_settings
from lightning.pytorch import LightningModule
from lightning.pytorch import Trainer as LightningTrainer
from lightning.pytorch.cli import LightningCLI
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..data import DataModule
from ..index import IndexConfig
from ..models import BoltirConfig
from ..modules import BoltirModule
from ..trainer import Trainer
from ._config_paths import resolve_config_args

_LINKED = {"model", "datamodule"}


class BoltirCLI(LightningCLI):
    """Lightning's CLI with boltir's subcommands; each maps to the Trainer method of the same name."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "index": _LINKED,
            "search": _LINKED,
            "re_rank": _LINKED,
        }

    @staticmethod
    def configure_optimizers(lightning_module: LightningModule, optimizer: Optimizer, lr_scheduler: Any = None) -> Any:
        """The config's ``optimizer:`` and ``lr_scheduler:``; a scheduler with ``interval = "step"`` (boltir's
        LinearWarmupDecay) steps after every optimiser step, others once per epoch as in Lightning."""
        if lr_scheduler is None:
            return optimizer
        scheduler: dict[str, Any] = {"scheduler": lr_scheduler, "interval": getattr(lr_scheduler, "interval", "epoch")}
        if isinstance(lr_scheduler, ReduceLROnPlateau):
            scheduler["monitor"] = getattr(lr_scheduler, "monitor", "val/nDCG@10")
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def run_lightning(args: list[str]) -> None:
    """Parse ``args`` (a subcommand first) and run it; a parsing error raises ``argparse.ArgumentError``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # configs are dataclasses; YAML picks a family's or engine's subclass by class_path
    set_parsing_settings(subclasses_enabled=[IndexConfig, BoltirConfig])
    defaults: dict[str, Any] = {"logger": False, "enable_checkpointing": False}
    # the module's default AdamW gives way to the config's optimizer: section; that is the point, not news
    warnings.filterwarnings("ignore", message=r".*configure_optimizers` will be overridden")
    # boltir's dispatcher hands Lightning the arguments it parsed (without --debug); they come from sys.argv by design
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
    command = args[:1]
    args = command + resolve_config_args(command[0], args[1:]) if command else args  # paths in a file: beside it
    no_exit = {"exit_on_error": False}  # errors come back to boltir.cli.main, which prints them in one line
    BoltirCLI(
        model_class=BoltirModule,
        datamodule_class=DataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        args=args,
        parser_kwargs={**no_exit, **{name: no_exit for name in BoltirCLI.subcommands()}},
        # seed_everything: true would warn "No seed found, seed set to 0" on every run; 0 is that same seed
        seed_everything_default=0,
        trainer_defaults=defaults if command and command[0] != "fit" else {},
    )


def command_options(command: str) -> list[str]:
    """The top-level options of a subcommand (the Trainer method's parameters and the config's sections), for
    suggesting the closest one to a misspelt option."""
    method = getattr(Trainer, command, None)
    names = list(inspect.signature(method).parameters)[1:] if method else []
    # boltir's Trainer.__init__ takes **kwargs: the options are Lightning's
    trainer = [f"trainer.{p}" for p in inspect.signature(LightningTrainer.__init__).parameters if p != "self"]
    return [*names, *trainer, "config", "model", "data", "trainer", "optimizer", "lr_scheduler", "seed_everything", "ckpt_path"]
