"""Indexing over Lightning's predict loop: document vectors stream from the model into an engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..errors import ConfigError
from ..index import FaissIndexConfig, IndexConfig, Indexer
from ..modules.base import EncodeOutput


class IndexCallback(pl.Callback):
    """Adds every document batch's vectors to an index and writes it atomically when the loop ends.

    Args:
        index_dir: where the index directory goes (replaced only once the new one is complete).
        index_config: the engine and its settings; Faiss flat (exact) by default.
    """

    def __init__(self, index_dir: str | os.PathLike[str], index_config: IndexConfig | None = None) -> None:
        super().__init__()
        self.index_dir = Path(index_dir)
        self.index_config = index_config or FaissIndexConfig()
        self.indexer: Indexer | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.indexer = self.index_config.indexer(self.index_dir, pl_module.model)

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "doc":
            raise ConfigError("index needs document datasets (DocDataset) in data.inference_datasets.")
        assert self.indexer is not None
        self.indexer.add(outputs.ids, outputs.embeddings)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.indexer is not None
        path = self.indexer.finish()
        vectors = f" ({self.indexer.count} segment vectors)" if self.indexer.segmented else ""
        print(f"indexed {self.indexer.documents} documents{vectors} into {path}", flush=True)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.indexer is not None:
            self.indexer.abort()
