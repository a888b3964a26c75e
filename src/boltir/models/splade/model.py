"""The SPLADE model: MLM backbone → log(1 + ReLU) → pooling over tokens → optional expansion filter and top-k."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn
from transformers import AutoModelForMaskedLM

from ..bi_encoder import BiEncoderModel
from ..layers import LogSaturation, TopKPruning, VocabularyPooling, restrict_to_input_tokens
from ..model import run_backbone
from .config import SpladeConfig


class SpladeModel(BiEncoderModel):
    """Encodes texts into ``[batch, vocab]`` sparse term weights; ``score`` is their dot product.

    Loads any ``*ForMaskedLM`` directory (e.g. ``boltir/splade-tiny`` or a BERT MLM checkpoint).
    """

    config_class: ClassVar[type[SpladeConfig]] = SpladeConfig
    backbone_class: ClassVar = AutoModelForMaskedLM
    representation: ClassVar[str] = "sparse"
    config: SpladeConfig

    def build_layers(self) -> None:
        c = self.config
        self.activation = LogSaturation()
        # the pooled tensors are the backbone's fresh logits (or their activations), free to overwrite
        self.query_pooling = VocabularyPooling(c.query_pooling, overwrite=True)
        self.doc_pooling = VocabularyPooling(c.doc_pooling, overwrite=True)
        self.query_pruning = TopKPruning(c.query_top_k) if c.query_top_k else None
        self.doc_pruning = TopKPruning(c.doc_top_k) if c.doc_top_k else None
        self.projection = None
        # inference-free SPLADE: one learned weight per vocabulary token stands in for the query encoder
        self.query_weights = nn.Parameter(torch.ones(self.embedding_dim)) if c.query_weighting == "static" else None

    @classmethod
    def default_config(cls, directory: Path) -> SpladeConfig:
        return SpladeConfig()

    @property
    def embedding_dim(self) -> int:
        return int(self.backbone.config.vocab_size)

    def index_fingerprint(self) -> dict:
        c = self.config
        return {"dim": self.embedding_dim, "similarity": c.similarity, "doc_pooling": c.doc_pooling,
                "backbone": self.backbone.config.model_type}

    def _sparse(
        self, backbone: nn.Module, pooling: VocabularyPooling, pruning: TopKPruning | None, encoding: dict[str, Tensor], expand: bool
    ) -> Tensor:
        logits = run_backbone(backbone, **encoding).logits
        if pooling.strategy == "max":
            # log(1 + relu) never decreases, so max-pooling the logits first gives the same vectors (and the same
            # gradients) with one pass over the [batch, tokens, vocab] logits instead of several
            vectors = self.activation(pooling(logits, encoding["attention_mask"]))
        else:
            vectors = pooling(self.activation(logits), encoding["attention_mask"])
        if not expand:
            special = self.tokenizer.all_special_ids if self.config.zero_special_tokens else []
            vectors = restrict_to_input_tokens(vectors, encoding["input_ids"], encoding["attention_mask"], special)
        return pruning(vectors) if pruning is not None else vectors

    def tokenize_queries(self, queries: list[str]) -> dict[str, Tensor]:
        if self.query_weights is None:
            return super().tokenize_queries(queries)
        c = self.config  # static weights: the query's own tokens, without special tokens
        encoding = self.tokenizer([c.query_prefix + q for q in queries], add_special_tokens=False, padding=True,
                                  truncation=True, max_length=c.query_length, return_tensors="pt")
        return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}

    def encode_queries(self, encoding: dict[str, Tensor]) -> Tensor:
        """``[batch, vocab]`` query term weights (zero outside the query's terms and expansions)."""
        if self.query_weights is not None:
            return self._static_weights(encoding)
        backbone = self.query_backbone or self.backbone
        return self._sparse(backbone, self.query_pooling, self.query_pruning, encoding, self.config.query_expansion)

    def _static_weights(self, encoding: dict[str, Tensor]) -> Tensor:
        """Each query token's weight from the table, at its vocabulary entry (0 elsewhere and for padding)."""
        assert self.query_weights is not None
        ids, mask = encoding["input_ids"], encoding["attention_mask"]
        weights = self.query_weights[ids].float() * mask.float()
        vectors = weights.new_zeros(ids.shape[0], self.embedding_dim).scatter(1, ids, weights)
        return self.query_pruning(vectors) if self.query_pruning is not None else vectors

    def encode_docs(self, encoding: dict[str, Tensor]) -> Tensor:
        """``[batch, vocab]`` document term weights."""
        return self._sparse(self.backbone, self.doc_pooling, self.doc_pruning, encoding, self.config.doc_expansion)

    def terms(self, vector: Tensor, top: int | None = None) -> list[tuple[str, float]]:
        """The non-zero terms of one ``[vocab]`` vector as (token, weight), heaviest first (to inspect a model)."""
        weights, ids = vector.float().sort(descending=True)
        n = int((weights > 0).sum()) if top is None else min(top, int((weights > 0).sum()))
        tokens = self.tokenizer.convert_ids_to_tokens(ids[:n].tolist())
        return list(zip(tokens, weights[:n].tolist()))


__all__ = ["SpladeModel"]
