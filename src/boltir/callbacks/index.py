"""Indexing over Lightning's predict loop: document vectors stream from the model into an engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from ..errors import ConfigError
from ..index import FaissIndexConfig, IndexConfig, Indexer
from ..modules.base import EncodeOutput


class IndexCallback(pl.Callback):
    """Adds every document batch's vectors to an index and writes it atomically when the loop ends.

    Args:
        index_dir: where the index directory goes (replaced only once the new one is complete).
        index_config: the engine and its settings; Faiss flat (exact) by default.
        buffer_size: vectors held on the model's device before they go to the engine together; moving them
            waits for the device, so moving them in few large steps lets it run ahead of the host.
    """

    def __init__(
        self, index_dir: str | os.PathLike[str], index_config: IndexConfig | None = None, buffer_size: int = 32_768
    ) -> None:
        super().__init__()
        self.index_dir = Path(index_dir)
        self.index_config = index_config or FaissIndexConfig()
        self.buffer_size = buffer_size
        self.indexer: Indexer | None = None
        self._ids: list[str] = []
        self._vectors: list[Tensor] = []

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.indexer = self.index_config.indexer(self.index_dir, pl_module.model)
        self._ids, self._vectors = [], []

    def _flush(self) -> None:
        assert self.indexer is not None
        if self._ids:
            self.indexer.add(self._ids, torch.cat(self._vectors))
        self._ids, self._vectors = [], []

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "doc":
            raise ConfigError("index needs document datasets (DocDataset) in data.inference_datasets.")
        self._ids.extend(outputs.ids)
        self._vectors.append(outputs.embeddings)
        if len(self._ids) >= self.buffer_size:
            self._flush()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.indexer is not None
        self._flush()
        path = self.indexer.finish()
        print(f"indexed {self.indexer.count} documents into {path}", flush=True)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._ids, self._vectors = [], []
        if self.indexer is not None:
            self.indexer.abort()
