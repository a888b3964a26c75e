"""boltir's Trainer: Lightning's, with ``index``, ``search`` and ``re_rank`` entry points.

Each entry point runs Lightning's predict loop with the matching callback attached, so devices, precision,
progress bars and multi-GPU come from Lightning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl

from .callbacks import IndexCallback, RandomState, RankingValidation, ReRankCallback, SearchCallback
from .data import DataModule
from .eval import DEFAULT_MEASURES
from .index import IndexConfig
from .modules import BoltirModule


class Trainer(pl.Trainer):
    """A Lightning Trainer that also indexes, searches and re-ranks.

    It attaches :class:`~boltir.callbacks.RankingValidation` (``val/<measure>`` during fit) and
    :class:`~boltir.callbacks.RandomState` (random states in checkpoints) unless the callbacks already hold one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for default in (RankingValidation, RandomState):
            if not any(isinstance(callback, default) for callback in self.callbacks):
                self.callbacks.append(default())

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
    ) -> IndexCallback:
        """Encode every document of the datamodule's inference datasets into an index at ``index_dir``."""
        return self._predict_with(IndexCallback(index_dir, index_config), model, datamodule)  # type: ignore[return-value]

    def search(
        self,
        model: BoltirModule,
        datamodule: DataModule,
        index_dir: str | os.PathLike[str] = "indexes/index",
        k: int = 100,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        search_settings: dict[str, Any] | None = None,
    ) -> SearchCallback:
        """Search the index with every query; write a TREC run per query dataset and evaluate it."""
        callback = SearchCallback(
            index_dir, k=k, search_settings=search_settings, run_dir=run_dir, run_path=run_path, measures=measures
        )
        return self._predict_with(callback, model, datamodule)  # type: ignore[return-value]

    def re_rank(
        self,
        model: BoltirModule,
        datamodule: DataModule,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
    ) -> ReRankCallback:
        """Re-score the candidates of every run dataset; write the new runs and evaluate them."""
        callback = ReRankCallback(run_dir=run_dir, run_path=run_path, measures=measures)
        return self._predict_with(callback, model, datamodule)  # type: ignore[return-value]
