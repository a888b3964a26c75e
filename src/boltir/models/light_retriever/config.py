"""Hyper-parameters of LightRetriever: an LLM document encoder with a query encoder reduced to a lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ...errors import ConfigError
from ..config import BoltirConfig
from ..layers import check_similarity

REPRESENTATIONS = ("dense", "sparse")
TOKEN_POOLINGS = ("mean", "sum")


@dataclass
class LightRetrieverConfig(BoltirConfig):
    """LightRetriever (Ma et al., 2025): documents go through the full decoder LLM, queries (almost) do not.

    Attributes:
        representation: ``dense`` (last-token state of the LLM) or ``sparse`` (the LLM's vocabulary projection,
            log(1 + ReLU), max-pooled over the document's tokens).
        symmetric: the baseline that encodes whole queries with the same LLM. False (LightRetriever): a dense
            query is the ``token_pooling`` of its tokens' vectors, each token encoded alone by the LLM inside
            ``query_prefix`` (cacheable as an EmbeddingBag); a sparse query is its token counts (no model at all).
        token_pooling: ``mean`` or ``sum`` of the token vectors of an asymmetric dense query.
        similarity: ``dot`` or ``cosine`` for dense vectors; sparse vectors always compare by dot product.
        query_prefix / doc_prefix: text put before each query (or query token) / each document.
        query_length / doc_length: maximum tokens; an EOS token is always appended after truncation.
        doc_top_k: keep only the k largest terms of each sparse document vector (None keeps all).
        lora_r: LoRA rank of the adapters put on the LLM (0: train every weight). Saving merges them.
        lora_alpha / lora_dropout / lora_target_modules: the adapters' scale, dropout and the modules they wrap
            (None: every linear layer of the decoder blocks).
    """

    family: ClassVar[str] = "light-retriever"

    representation: str = "dense"
    symmetric: bool = False
    token_pooling: str = "mean"
    similarity: str = "cosine"
    query_prefix: str = "Query: "
    doc_prefix: str = ""
    query_length: int = 64
    doc_length: int = 256
    doc_top_k: int | None = None
    lora_r: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = field(default=None)

    def validate(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise ConfigError(f"representation='{self.representation}' does not exist; choose one of {list(REPRESENTATIONS)}.")
        if self.token_pooling not in TOKEN_POOLINGS:
            raise ConfigError(f"token_pooling='{self.token_pooling}' does not exist; choose one of {list(TOKEN_POOLINGS)}.")
        check_similarity(self.similarity)
        if self.similarity == "l2":
            raise ConfigError("similarity='l2' is not supported by LightRetriever; choose 'dot' or 'cosine'.")
        if self.query_length <= 0 or self.doc_length <= 1:
            raise ConfigError("query_length must be positive and doc_length above 1 (room for the EOS token).")
        if self.doc_top_k is not None and self.doc_top_k <= 0:
            raise ConfigError(f"doc_top_k must be positive or None, got {self.doc_top_k}.")
        if self.lora_r < 0:
            raise ConfigError(f"lora_r must be 0 (no LoRA) or a positive rank, got {self.lora_r}.")

    @property
    def score_similarity(self) -> str:
        """How query and document vectors compare: sparse vectors by dot product, dense ones as configured."""
        return "dot" if self.representation == "sparse" else self.similarity
