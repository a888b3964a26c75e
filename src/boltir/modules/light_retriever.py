"""The LightRetriever LightningModule: a bi-encoder whose queries skip the LLM, plus the query token cache."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch

from ..data.batches import TokenBatch
from ..models import BoltirConfig, LightRetrieverModel
from .base import EncodeOutput, ScoreOutput
from .bi_encoder import BiEncoderModule


class LightRetrieverModule(BiEncoderModule):
    """LightRetriever ready to score, index, search, train and cache its query encoder.

    Args:
        query_only: load only what encodes queries (tokenizer and the cached EmbeddingBag), never the LLM;
            for ``search`` after ``boltir cache-embeddings``.
        cache_path: where the query token cache lies when not beside the model.
        training: BiEncoderModule's training options (``loss_functions``, ``in_batch_loss``, regularisers, ...);
            the paper's recipe is ``in_batch_loss: {name: infonce, temperature: 0.02}`` with ``loss_functions: null``.

    Example:
        >>> module = LightRetrieverModule("HuggingFaceTB/SmolLM2-135M-Instruct", config={"representation": "sparse"})
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores
    """

    model_class: ClassVar[type[LightRetrieverModel]] = LightRetrieverModel  # type: ignore[assignment]
    model: LightRetrieverModel  # type: ignore[assignment]

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        config: BoltirConfig | dict | None = None,
        model: LightRetrieverModel | None = None,
        query_only: bool = False,
        cache_path: str | os.PathLike[str] | None = None,
        **training: Any,
    ) -> None:
        if model is None and query_only and model_name_or_path is not None:
            model = LightRetrieverModel.for_queries(model_name_or_path, cache_path, config)
        super().__init__(model_name_or_path, config, model, **training)
        self.cache_path = cache_path

    @property
    def encode_batch_size(self) -> int:  # type: ignore[override]
        """Texts per LLM forward when encoding: sparse vectors pass through ``[batch, tokens, vocabulary]`` logits."""
        return 32 if self.model.representation == "sparse" else 256

    def predict_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> EncodeOutput | ScoreOutput:
        if isinstance(batch, TokenBatch):  # building the query token cache
            ids = torch.tensor(batch.token_ids, dtype=torch.long, device=self.device)
            return EncodeOutput([str(i) for i in batch.token_ids], self.model.token_vectors(ids), "token")
        return super().predict_step(batch, batch_idx, dataloader_idx)
