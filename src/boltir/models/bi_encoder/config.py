"""Hyper-parameters of the bi-encoder family (dense single-vector; sparse and multi-vector variants extend it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..config import BoltirConfig
from ..layers import POOLING_STRATEGIES, SIMILARITIES
from ..layers.lora import check_lora_options
from ..layers.segments import SegmentConfig


@dataclass
class BiEncoderConfig(BoltirConfig):
    """A bi-encoder: queries and documents are encoded apart and compared by a similarity function.

    Attributes:
        query_pooling / doc_pooling: how token states become one vector (cls, first, mean, sum, max, last).
        similarity: dot, cosine, l2 (negative squared distance) or euclidean (negative distance, Lightning IR's
            "l2") between query and document vectors.
        normalize: L2-normalise the vectors the encoder outputs (what is indexed).
        embedding_dim: add a linear projection to this size; None keeps the backbone's hidden size.
        projection_bias: the projection has a bias term (Lightning IR's ``projection="linear"``; False for
            ``"linear_no_bias"``).
        query_marker / doc_marker: a vocabulary token put after the first token of every query / document
            (ColBERT's ``[unused0]`` / ``[unused1]``, Lightning IR's ``[QUE]`` / ``[DOC]``); None adds none.
        query_length / doc_length: maximum tokens; longer texts are truncated (with ``segments``: tokens per segment).
        query_prefix / doc_prefix: text put before every query / document (e.g. "query: ").
        tied: one backbone for both sides; False trains a separate query encoder.
        append_eos: add the tokenizer's EOS token to every text (decoder LLMs with last-token pooling).
        segments: split long documents into segments (FirstP, MaxP, SeDR, transformer head); see
            :class:`~boltir.models.layers.segments.SegmentConfig`. None encodes each document as one sequence.
        lora_r: LoRA rank of adapters put on the backbone (0: train every weight); only the adapters and the
            family's own layers then train. Saving merges the adapters, so the saved model loads without peft.
        lora_alpha / lora_dropout / lora_target_modules: the adapters' scale (alpha / r), dropout and the modules
            they wrap (None: every linear layer that trains; see ``models.layers.lora``).
    """

    family: ClassVar[str] = "bi-encoder"
    # what this family accepts; the sparse and multi-vector variants narrow them
    pooling_strategies: ClassVar[tuple[str, ...]] = POOLING_STRATEGIES
    similarities: ClassVar[tuple[str, ...]] = SIMILARITIES

    query_pooling: str = "mean"
    doc_pooling: str = "mean"
    similarity: str = "cosine"
    normalize: bool = False
    embedding_dim: int | None = None
    projection_bias: bool = True
    query_marker: str | None = None
    doc_marker: str | None = None
    query_length: int = 64
    doc_length: int = 256
    query_prefix: str = ""
    doc_prefix: str = ""
    tied: bool = True
    append_eos: bool = False
    segments: SegmentConfig | None = None
    lora_r: int = 0
    lora_alpha: float = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None

    def __post_init__(self) -> None:
        self.segments = SegmentConfig.coerce(self.segments)  # a saved config or a YAML mapping holds a dict
        super().__post_init__()

    def validate(self) -> None:
        for option in ("query_pooling", "doc_pooling"):
            if getattr(self, option) not in self.pooling_strategies:
                raise ConfigError(
                    f"{option}='{getattr(self, option)}' does not exist for {type(self).__name__}; "
                    f"choose one of {list(self.pooling_strategies)}."
                )
        if self.similarity not in self.similarities:
            raise ConfigError(
                f"similarity='{self.similarity}' does not exist for {type(self).__name__}; choose one of {list(self.similarities)}."
            )
        if self.embedding_dim is not None and self.embedding_dim <= 0:
            raise ConfigError(f"embedding_dim must be positive, got {self.embedding_dim}.")
        if self.query_length <= 0 or self.doc_length <= 0:
            raise ConfigError("query_length and doc_length must be positive.")
        if self.segments is not None and self.doc_marker is not None:
            raise ConfigError("segments and doc_marker do not combine: set doc_marker=None to split long documents.")
        check_lora_options(self.lora_r, self.lora_alpha, self.lora_dropout)
        if self.segments is not None and self.doc_pooling == "none":
            raise ConfigError("segments need one vector per segment: choose a doc_pooling other than 'none'.")
