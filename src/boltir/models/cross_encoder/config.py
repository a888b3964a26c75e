"""Hyper-parameters of the cross-encoder family: pointwise, sparse-attention and listwise (Set-Encoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import ConfigError
from ..config import BoltirConfig
from ..layers import POOLING_STRATEGIES
from ..layers.lora import check_lora_options

ATTENTION_PATTERNS = ("full", "sparse", "set")
CROSS_POOLING = tuple(p for p in POOLING_STRATEGIES if p != "none") + ("pooler",)


@dataclass
class CrossEncoderConfig(BoltirConfig):
    """A cross-encoder: query and document read together in one sequence, one score per pair.

    Truncation policy: a query is cut to its first ``query_length`` tokens; the document then fills the rest of
    ``max_length`` (special tokens included) and is cut at its end. A long query therefore never crowds out the
    document, and no pair ever exceeds ``max_length`` (keep it within the backbone's position limit).

    Attributes:
        pooling: how token states become the vector the linear head scores: cls, first, mean, max, last, or
            pooler (the backbone's own pooler, as BERT sequence-classification checkpoints use it).
        query_length: maximum query tokens (special tokens not counted).
        max_length: maximum tokens of a query-document pair.
        attention: ``full`` (every token sees every token); ``sparse`` (query tokens see the query, document tokens
            the query and ``window`` document tokens on each side, the first token sees all); ``set`` (the
            Set-Encoder: all candidates of a query are read together, every token of a passage also attends to
            the interaction tokens of the other passages, so passages inform each other and order does not matter).
        interaction_token: for ``set``: a vocabulary token put after the first token of every pair as the passage's
            interaction token (Lightning IR's ``add_extra_token``: ``[INT]``); None: the first token is it.
        set_depth: for ``set``: lists shorter than this also attend to ``set_depth - size`` interaction states
            drawn at random from their list's mean and standard deviation (Lightning IR's ``depth`` with
            ``sample_missing_docs``), so a model trained on short lists sees as many others as when re-ranking
            100; None draws none (scores are then deterministic).
        doc_length: maximum document tokens (special tokens not counted), as Lightning IR cuts documents; None:
            the document fills what the query leaves of ``max_length``.
        window: for ``sparse``: document tokens attend to document tokens at most this far away; None: all.
        query_sees_doc: for ``sparse``: let query tokens attend to the document as well.
        true_token / false_token: for seq2seq backbones (monoT5): the score is log p(true) over {true, false}
            at the first decoder step.
        seq2seq_template: the monoT5 input text, with ``{query}`` and ``{doc}``.
        relevance_log_prob: the score is log sigmoid(head output), i.e. log p(relevant) of a two-label softmax
            classifier whose head holds logit(relevant) - logit(not relevant). Set when a two-label checkpoint
            (castorini's monoBERT) loads, as pygaggle scores it, and for Lightning IR's ``scoring_strategy="mono"``:
            ``log_softmax(logits)[:, 1]``.
    """

    family: ClassVar[str] = "cross-encoder"

    pooling: str = "cls"
    query_length: int = 64
    max_length: int = 512
    attention: str = "full"
    window: int | None = None
    query_sees_doc: bool = False
    true_token: str = "true"
    false_token: str = "false"
    seq2seq_template: str = "Query: {query} Document: {doc} Relevant:"
    interaction_token: str | None = None
    set_depth: int | None = None
    doc_length: int | None = None
    relevance_log_prob: bool = False
    lora_r: int = 0
    lora_alpha: float = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None

    def validate(self) -> None:
        if self.pooling not in CROSS_POOLING:
            raise ConfigError(f"pooling='{self.pooling}' does not exist; choose one of {list(CROSS_POOLING)}.")
        if self.attention not in ATTENTION_PATTERNS:
            raise ConfigError(f"attention='{self.attention}' does not exist; choose one of {list(ATTENTION_PATTERNS)}.")
        if self.window is not None and self.attention != "sparse":
            raise ConfigError(f"window is an option of attention='sparse', but attention='{self.attention}'.")
        if self.window is not None and self.window < 1:
            raise ConfigError(f"window must be at least 1 (or None for the whole document), got {self.window}.")
        if self.query_length < 1 or self.max_length < 8:
            raise ConfigError("query_length must be positive and max_length at least 8.")
        if self.query_length > self.max_length // 2:
            raise ConfigError(
                f"query_length={self.query_length} leaves too little of max_length={self.max_length} for the document; "
                "keep query_length at most half of max_length."
            )
        if self.interaction_token is not None and self.attention != "set":
            raise ConfigError(f"interaction_token is an option of attention='set', but attention='{self.attention}'.")
        if self.set_depth is not None and (self.attention != "set" or self.set_depth < 1):
            raise ConfigError(f"set_depth is a positive option of attention='set'; got {self.set_depth} with "
                              f"attention='{self.attention}'.")
        if self.doc_length is not None and self.doc_length < 1:
            raise ConfigError(f"doc_length must be positive (or None to fill max_length), got {self.doc_length}.")
        check_lora_options(self.lora_r, self.lora_alpha, self.lora_dropout)
        if "{query}" not in self.seq2seq_template or "{doc}" not in self.seq2seq_template:
            raise ConfigError("seq2seq_template must contain {query} and {doc}.")
