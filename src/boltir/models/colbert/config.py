"""Hyper-parameters of the multi-vector (ColBERT) bi-encoder: one vector per token, compared by MaxSim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..bi_encoder import BiEncoderConfig


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
        query_marker / doc_marker: a vocabulary token put after the first token of every query / document
            (ColBERT's ``[unused0]`` / ``[unused1]``); None adds none.
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
    query_marker: str | None = None
    doc_marker: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.append_eos:
            raise ConfigError("ColBERTConfig does not support append_eos (every token already has its own vector).")
        if self.query_length < 2 or self.doc_length < 2:
            raise ConfigError("ColBERTConfig needs query_length and doc_length of at least 2 (room for a marker).")
