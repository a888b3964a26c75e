"""Hyper-parameters of the multi-vector (ColBERT) bi-encoder: one vector per token, compared by MaxSim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..bi_encoder import BiEncoderConfig
from ..layers.multivector import MULTI_VECTOR_AGGREGATIONS


@dataclass
class ColBERTConfig(BiEncoderConfig):
    """ColBERT (Khattab & Zaharia, 2020): token states → linear projection → L2 norm; score = MaxSim.

    Attributes (beyond :class:`BiEncoderConfig`'s lengths, prefixes and ``tied``):
        embedding_dim: size of each token vector (ColBERT uses 128, answerai-colbert-small 96; None keeps
            the backbone's hidden size without a projection).
        projection_bias: the projection adds a bias (PyLate's Dense layers may; Stanford ColBERT's has none).
        normalize: L2-normalise every token vector (MaxSim over cosine similarities).
        query_augmentation: pad every query to ``query_length`` with [MASK] tokens, whose vectors also score.
        attend_to_mask_tokens: let the query's other tokens attend to those [MASK] tokens (ColBERTv2: False).
        mask_punctuation: document tokens that are punctuation get no vector (smaller index, as in ColBERT).
        mask_special_tokens: document [CLS]/[SEP]-like tokens get no vector either.
        query_mask_punctuation: query tokens that are punctuation do not score (Lightning IR's
            ``query_mask_scoring_tokens="punctuation"``).
        query_mask_tokens / doc_mask_tokens: further vocabulary tokens that do not score (e.g. ``["the", "?"]``).
        query_aggregation: how a query token's scores add up over the query: sum (ColBERT), mean or max.
        doc_aggregation: how a query token scores against a document's tokens: max (ColBERT), sum or mean.
            Index engines (PLAID, exact MaxSim) compute sum/max; other choices score through the model
            (``module.score``, re-ranking).
    """

    family: ClassVar[str] = "colbert"
    pooling_strategies: ClassVar[tuple[str, ...]] = ("none",)
    similarities: ClassVar[tuple[str, ...]] = ("dot",)

    query_pooling: str = "none"
    doc_pooling: str = "none"
    similarity: str = "dot"
    normalize: bool = True
    embedding_dim: int | None = 128
    projection_bias: bool = False
    query_length: int = 32
    doc_length: int = 256
    query_augmentation: bool = True
    attend_to_mask_tokens: bool = False
    mask_punctuation: bool = True
    mask_special_tokens: bool = False
    query_mask_punctuation: bool = False
    query_mask_tokens: list[str] | None = None
    doc_mask_tokens: list[str] | None = None
    query_aggregation: str = "sum"
    doc_aggregation: str = "max"

    def validate(self) -> None:
        super().validate()
        if self.append_eos:
            raise ConfigError("ColBERTConfig does not support append_eos (every token already has its own vector).")
        for option in ("query_aggregation", "doc_aggregation"):
            if getattr(self, option) not in MULTI_VECTOR_AGGREGATIONS:
                raise ConfigError(f"{option}='{getattr(self, option)}' does not exist; choose one of {list(MULTI_VECTOR_AGGREGATIONS)}.")
        if self.query_length < 2 or self.doc_length < 2:
            raise ConfigError("ColBERTConfig needs query_length and doc_length of at least 2 (room for a marker).")
