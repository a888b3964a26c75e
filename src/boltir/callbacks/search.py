"""Searching over Lightning's predict loop: query vectors go to an index, results become a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..data.run import Qrels, warn_judged_outside
from ..errors import ConfigError
from ..index import Searcher, open_searcher
from ..types import EncodeOutput
from .run_writer import RunWriter


class SearchCallback(RunWriter):
    """Searches an index with each query batch's vectors; writes and evaluates one run per query dataset.

    Args:
        index_dir: an index built by ``boltir index`` with a matching model.
        k: results per query.
        search_settings: engine settings to override at search time (e.g. ``{"nprobe": 64}``).
        Others as in :class:`RunWriter`.
    """

    def __init__(self, index_dir: str | os.PathLike[str], k: int = 100, search_settings: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if k <= 0:
            raise ConfigError(f"k must be positive, got {k}.")
        self.index_dir = Path(index_dir)
        self.k = k
        self.search_settings = search_settings or {}
        self.searcher: Searcher | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self.searcher = open_searcher(self.index_dir, **self.search_settings)
        self.searcher.check_model(pl_module.model)

    def check_qrels(self, qrels: Qrels) -> None:
        assert self.searcher is not None
        warn_judged_outside(qrels, set(self.searcher.doc_ids.tolist()), f"the index at {self.index_dir}")

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "query":
            raise ConfigError("search needs query datasets (QueryDataset) in data.inference_datasets.")
        assert self.searcher is not None
        found = self.searcher.search(outputs.embeddings, self.k, outputs.ids)
        self._run(dataloader_idx).rankings.update(found.rankings)
