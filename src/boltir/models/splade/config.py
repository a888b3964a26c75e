"""Hyper-parameters of the learned-sparse (SPLADE) bi-encoder: a bi-encoder whose vectors live on the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..bi_encoder import BiEncoderConfig
from ..layers import SPARSE_POOLING


QUERY_WEIGHTINGS = ("contextualized", "static")


@dataclass
class SpladeConfig(BiEncoderConfig):
    """SPLADE: MLM logits → log(1 + ReLU) → max or sum over tokens, one weight per vocabulary term.

    Attributes (beyond :class:`BiEncoderConfig`'s lengths, prefixes and ``tied``):
        query_pooling / doc_pooling: ``max`` (SPLADE v2 and later) or ``sum`` (SPLADE v1) over tokens.
        query_expansion: False keeps only the query's own tokens, as "SPLADE-doc" style models do.
        doc_expansion: False keeps only the document's own tokens (no expansion terms in the index).
        zero_special_tokens: without expansion, the text's special tokens ([CLS], [SEP]) get weight 0: they are
            no terms. Lightning IR keeps their weights (False there).
        query_weighting: ``contextualized`` (the query runs through the encoder) or ``static`` (inference-free
            SPLADE: a query's vector is a learned weight per vocabulary token of the query, from a table; no
            encoder runs for queries, which are tokenised without special tokens, as in Lightning IR). Sparse
            indexes match a query's positive weights only; ``score`` and re-ranking use all of them.
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
    doc_expansion: bool = True
    zero_special_tokens: bool = True
    query_weighting: str = "contextualized"
    query_top_k: int | None = None
    doc_top_k: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.embedding_dim is not None or self.normalize:
            raise ConfigError("SpladeConfig has no projection or normalisation: leave embedding_dim=None and normalize=False.")
        if self.query_weighting not in QUERY_WEIGHTINGS:
            raise ConfigError(f"query_weighting='{self.query_weighting}' does not exist; choose one of {list(QUERY_WEIGHTINGS)}.")
        if self.query_weighting == "static" and self.query_expansion:
            raise ConfigError("query_weighting='static' weighs the query's own tokens only: set query_expansion=False.")
        for option in ("query_top_k", "doc_top_k"):
            value = getattr(self, option)
            if value is not None and value <= 0:
                raise ConfigError(f"{option} must be positive (or None to keep every term), got {value}.")
