"""Hyper-parameters of the learned-sparse (SPLADE) bi-encoder: a bi-encoder whose vectors live on the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..bi_encoder import BiEncoderConfig
from ..layers import SPARSE_POOLING


@dataclass
class SpladeConfig(BiEncoderConfig):
    """SPLADE: MLM logits → log(1 + ReLU) → max or sum over tokens, one weight per vocabulary term.

    Attributes (beyond :class:`BiEncoderConfig`'s lengths, prefixes and ``tied``):
        query_pooling / doc_pooling: ``max`` (SPLADE v2 and later) or ``sum`` (SPLADE v1) over tokens.
        query_expansion: False keeps only the query's own (non-special) tokens, as "SPLADE-doc" style models do.
        query_top_k / doc_top_k: keep only the k largest weights of each vector (None keeps all).
    Scores are dot products; vectors are neither projected nor normalised.
    """

    family: ClassVar[str] = "splade"
    pooling_strategies: ClassVar[tuple[str, ...]] = SPARSE_POOLING
    similarities: ClassVar[tuple[str, ...]] = ("dot",)

    query_pooling: str = "max"
    doc_pooling: str = "max"
    similarity: str = "dot"
    query_expansion: bool = True
    query_top_k: int | None = None
    doc_top_k: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.embedding_dim is not None or self.normalize:
            raise ConfigError("SpladeConfig has no projection or normalisation: leave embedding_dim=None and normalize=False.")
        for option in ("query_top_k", "doc_top_k"):
            value = getattr(self, option)
            if value is not None and value <= 0:
                raise ConfigError(f"{option} must be positive (or None to keep every term), got {value}.")
