"""boltir's Trainer: Lightning's, with ``index``, ``search``, ``re_rank`` and ``cache_embeddings`` entry points.

Each entry point runs Lightning's predict loop with the matching callback attached, so devices, precision,
progress bars and multi-GPU come from Lightning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from .callbacks import IndexCallback, ReRankCallback, SearchCallback, TokenCacheCallback
from .data import DataModule
from .data.batches import TokenBatch
from .eval import DEFAULT_MEASURES
from .index import IndexConfig
from .modules import BoltirModule


class Trainer(pl.Trainer):
    """A Lightning Trainer that also indexes, searches, re-ranks and caches query token vectors."""

    def _predict_with(self, callback: pl.Callback, model: BoltirModule, datamodule: DataModule | None, loader: DataLoader | None = None) -> pl.Callback:
        self.callbacks.append(callback)
        try:
            if loader is not None:
                self.predict(model, dataloaders=loader, return_predictions=False)
            else:
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

    def cache_embeddings(
        self,
        model: BoltirModule,
        datamodule: DataModule | None = None,
        batch_size: int = 1024,
        cache_path: str | os.PathLike[str] | None = None,
    ) -> TokenCacheCallback:
        """Encode every vocabulary token alone (LightRetriever's query EmbeddingBag) and save it beside the model."""
        vocabulary = range(len(model.model.tokenizer))
        loader = DataLoader(vocabulary, batch_size=batch_size, collate_fn=lambda ids: TokenBatch(list(ids)))  # type: ignore[arg-type]
        return self._predict_with(TokenCacheCallback(cache_path), model, None, loader)  # type: ignore[return-value]
