"""The LightRetriever LightningModule: a bi-encoder whose queries skip the LLM, and building its query token cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from ..models import BoltirConfig, LightRetrieverModel
from .bi_encoder import BiEncoderModule


class LightRetrieverModule(BiEncoderModule):
    """LightRetriever ready to score, index, search, train and cache its query encoder.

    Args:
        query_only: load only what encodes queries (tokenizer and the cached EmbeddingBag), never the LLM;
            for ``search`` after :meth:`cache_embeddings` (or ``boltir cache-embeddings``).
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

    def cache_embeddings(self, batch_size: int = 1024, cache_path: str | os.PathLike[str] | None = None) -> Path:
        """Build the query token cache (see :meth:`LightRetrieverModel.build_token_cache`) on the module's device."""
        return self.model.build_token_cache(batch_size, cache_path)
