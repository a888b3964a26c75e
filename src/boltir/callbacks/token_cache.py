"""Building LightRetriever's query token cache over Lightning's predict loop: one vector per vocabulary token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ..errors import ConfigError
from ..models import resolve_model_dir
from ..modules.base import EncodeOutput


class TokenCacheCallback(pl.Callback):
    """Collects the vector of every vocabulary token and saves them, fingerprinted, beside the model.

    Args:
        cache_path: where the cache goes; by default ``query_embeddings.safetensors`` in the model's directory.
    """

    def __init__(self, cache_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.cache_path = Path(cache_path) if cache_path else None
        self.vectors: torch.Tensor | None = None
        self.written: Path | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        if getattr(model, "token_vectors", None) is None or model.config.symmetric or model.representation != "dense":
            raise ConfigError("cache-embeddings needs an asymmetric dense LightRetriever model (symmetric=False, representation='dense').")
        if trainer.world_size > 1:
            raise ConfigError("cache-embeddings runs on one device (trainer.devices=1): the vocabulary takes seconds on one GPU.")
        self.directory = self._model_dir(model)
        self.vectors = None

    @staticmethod
    def _model_dir(model: Any) -> Path:
        """The directory the model was loaded from: the cache is fingerprinted with its weight files."""
        try:
            return resolve_model_dir(model.name_or_path)
        except Exception:
            raise ConfigError(
                "cache-embeddings fingerprints the model's weight files: save the model (save_pretrained) and load it "
                "from that directory first."
            ) from None

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "token":
            raise ConfigError("cache-embeddings encodes vocabulary tokens only (TokenBatch).")
        vectors = outputs.embeddings.detach().float().cpu()
        if self.vectors is None:
            self.vectors = torch.zeros(len(pl_module.model.tokenizer), vectors.shape[-1])
        self.vectors[torch.tensor(batch.token_ids)] = vectors

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.vectors is not None
        self.written = pl_module.model.save_token_cache(self.vectors, self.directory, self.cache_path)
        print(f"cached {len(self.vectors)} query token vectors into {self.written}", flush=True)
