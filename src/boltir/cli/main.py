"""``boltir fit|index|search|re_rank --config x.yaml`` on Lightning's CLI; any option can be overridden."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from jsonargparse import set_parsing_settings
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LightningCLI
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..data import DataModule
from ..errors import BoltirError
from ..index import IndexConfig
from ..models import BoltirConfig
from ..modules import BoltirModule
from ..trainer import Trainer
from . import cache_embeddings

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


def main(args: list[str] | None = None) -> None:
    """Run the CLI; an error the user caused ends it with one line naming what to change, not a traceback."""
    given = list(args if args is not None else sys.argv[1:])
    try:
        if given[:1] in (["cache-embeddings"], ["cache_embeddings"]):  # not a Lightning subcommand: reads no data
            cache_embeddings.main(given[1:])
            return
        _run(args)
    except Exception as exc:
        cause = _user_error(exc)
        if cause is None:
            raise
        print(f"boltir: error: {cause}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _user_error(exc: BaseException | None) -> BoltirError | None:
    """The BoltirError behind ``exc``; jsonargparse wraps errors raised while it instantiates classes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, BoltirError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _run(args: list[str] | None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # DocDataset shards itself across workers, so Lightning's length caveat does not apply; the pytree notice
    # is Lightning's own deprecation. Neither is something a user can act on.
    warnings.filterwarnings("ignore", message=r".*IterableDataset.*has `__len__` defined")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    # configs are dataclasses; YAML picks a family's or engine's subclass by class_path
    set_parsing_settings(subclasses_enabled=[IndexConfig, BoltirConfig])
    defaults = {"logger": False, "enable_checkpointing": False}
    # the module's default AdamW gives way to the config's optimizer: section; that is the point, not news
    warnings.filterwarnings("ignore", message=r".*configure_optimizers` will be overridden")
    command = (args if args is not None else sys.argv[1:])[:1]
    BoltirCLI(
        model_class=BoltirModule,
        datamodule_class=DataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        args=args,
        trainer_defaults=defaults if command and command[0] != "fit" else {},
    )


if __name__ == "__main__":
    main()
