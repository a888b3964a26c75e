"""boltir's Trainer: Lightning's, with ``index``, ``search`` and ``re_rank`` entry points.

Each entry point runs Lightning's predict loop with the matching callback attached, so devices, precision,
progress bars and multi-GPU come from Lightning.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks.progress import ProgressBar as ProgressBarBase

from .callbacks import IndexCallback, RandomState, RankingValidation, ReRankCallback, SearchCallback
from .callbacks.progress import ProgressBar
from .data import DataModule
from .eval import DEFAULT_MEASURES
from .index import IndexConfig
from .modules import BoltirModule


class _NoAdverts(logging.Filter):
    """Lightning logs advertisements for its cloud products ("💡 Tip: ...") whenever a Trainer starts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


_NO_ADVERTS = _NoAdverts()


def _quiet_lightning() -> None:
    """Silence what Lightning says about itself rather than about the user's run, narrowly, where it is wrong."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NO_ADVERTS)  # a set: added once
    # Lightning's own use of torch's deprecated pytree API
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", module=r"lightning\.pytorch\..*")
    # DocDataset shards itself across workers and processes, so its __len__ is exact; Lightning cannot tell
    warnings.filterwarnings("ignore", message=r".*IterableDataset.*has `__len__` defined", module=r"lightning\.pytorch\..*")


class Trainer(pl.Trainer):
    """A Lightning Trainer that also indexes, searches and re-ranks.

    It attaches :class:`~boltir.callbacks.RankingValidation` (``val/<measure>`` during fit) and
    :class:`~boltir.callbacks.RandomState` (random states in checkpoints) unless the callbacks already hold one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _quiet_lightning()
        callbacks = kwargs.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        if kwargs.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBarBase) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, ProgressBar()]
        super().__init__(*args, **kwargs)
        for default in (RankingValidation, RandomState):
            if not any(isinstance(callback, default) for callback in self.callbacks):
                self.callbacks.append(default())

    def fit(self, model: Any, train_dataloaders: Any = None, val_dataloaders: Any = None, datamodule: Any = None, ckpt_path: Any = None, **kwargs: Any) -> None:
        """Lightning's fit; a DataModule without validation sets runs no validation loop (instead of an empty one)."""
        no_validation = datamodule is not None and val_dataloaders is None and not getattr(datamodule, "val_datasets", True)
        limit = self.limit_val_batches
        if no_validation:
            self.limit_val_batches = 0
        try:
            super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, **kwargs)
        finally:
            self.limit_val_batches = limit

    def _predict_with(self, callback: pl.Callback, model: BoltirModule, datamodule: DataModule) -> pl.Callback:
        self.callbacks.append(callback)
        try:
            self.predict(model, datamodule=datamodule, return_predictions=False)
        finally:
            self.callbacks.remove(callback)
        return callback

    def index(
        self,
        model: BoltirModule,
        datamodule: DataModule,
        index_dir: str | os.PathLike[str] = "indexes/index",
        index_config: IndexConfig | None = None,
        shard_size: int = 65_536,
        resume: bool = False,
        keep_shards: bool = False,
    ) -> IndexCallback:
        """Encode every document of the datamodule's inference datasets into an index at ``index_dir``.

        Vectors go to disk in shards of ``shard_size`` documents as they are made (memory does not grow with
        the corpus); ``resume`` goes on from the complete shards of an interrupted run instead of starting over;
        ``keep_shards`` leaves them beside the index (``IndexCallback.shard_dir``) for other engines' builds.
        """
        callback = IndexCallback(index_dir, index_config, shard_size=shard_size, resume=resume, keep_shards=keep_shards)
        return self._predict_with(callback, model, datamodule)  # type: ignore[return-value]

    def search(
        self,
        model: BoltirModule,
        datamodule: DataModule,
        index_dir: str | os.PathLike[str] = "indexes/index",
        k: int = 100,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | list[str] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        search_settings: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> SearchCallback:
        """Search the index with every query; write a TREC run per query dataset and evaluate it.

        The run goes to ``run_path`` (a list: one path per query dataset), else ``<run_dir>/<run_name>.run``
        (``run_name`` defaults to the query dataset's name, e.g. ``scifact-test``), with its measures in
        ``.metrics.json`` beside it.
        """
        callback = SearchCallback(
            index_dir, k=k, search_settings=search_settings, run_dir=run_dir, run_path=run_path, measures=measures,
            run_name=run_name,
        )
        return self._predict_with(callback, model, datamodule)  # type: ignore[return-value]

    def re_rank(
        self,
        model: BoltirModule,
        datamodule: DataModule,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | list[str] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        run_name: str | None = None,
    ) -> ReRankCallback:
        """Re-score the candidates of every run dataset; write the new runs and evaluate them (named as in search)."""
        callback = ReRankCallback(run_dir=run_dir, run_path=run_path, measures=measures, run_name=run_name)
        return self._predict_with(callback, model, datamodule)  # type: ignore[return-value]
