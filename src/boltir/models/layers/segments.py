"""Long documents as segments: splitting, per-segment vectors, and the aggregation strategies.

A document longer than the encoder's input is cut into up to ``max_segments`` segments of at most
``doc_length`` tokens (special tokens included), each its own sequence in the batch. Strategies:

- ``firstp``: the first segment only (plain truncation; one vector per document).
- ``maxp``: every segment encoded on its own; a query scores the document by its best segment.
- ``sedr``: like maxp, but each segment's representation token also attends to the other segments'
  representation tokens in every layer (SeDR's segment interaction, see :mod:`.segment_attention`),
  plus a learned segment-order embedding (zero at the start, so an untrained model equals maxp).
- ``transformer_head``: segments encoded on their own, then a small transformer over each document's
  segment vectors (identity at the start); still one vector per segment, scored by the best one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...types import SegmentedVectors
from .segment_attention import SegmentLayout, enable_segment_attention, register_segment_attention

AGGREGATIONS = ("firstp", "maxp", "sedr", "transformer_head")


@dataclass
class SegmentConfig:
    """How a bi-encoder cuts long documents into segments and combines them.

    Attributes:
        aggregation: firstp, maxp, sedr or transformer_head (see :mod:`boltir.models.layers.segments`).
        max_segments: at most this many segments per document; the rest of a longer document is dropped.
        overlap: tokens shared by consecutive segments (a stride of ``doc_length - specials - overlap``).
        segment_embeddings: sedr adds a learned embedding of the segment's order to its token embeddings.
        head_layers / head_heads: size of the transformer_head (layers and attention heads).
    """

    aggregation: str = "maxp"
    max_segments: int = 8
    overlap: int = 0
    segment_embeddings: bool = True
    head_layers: int = 1
    head_heads: int = 4

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"segments.aggregation='{self.aggregation}' does not exist; choose one of {list(AGGREGATIONS)}.")
        if self.max_segments < 1:
            raise ConfigError(f"segments.max_segments must be at least 1, got {self.max_segments}.")
        if self.overlap < 0:
            raise ConfigError(f"segments.overlap must be >= 0, got {self.overlap}.")
        if self.head_layers < 1 or self.head_heads < 1:
            raise ConfigError("segments.head_layers and segments.head_heads must be at least 1.")

    @classmethod
    def coerce(cls, value: SegmentConfig | dict[str, Any] | None) -> SegmentConfig | None:
        """Accept a config, a mapping of its options (checked for typos) or None."""
        if value is None or isinstance(value, SegmentConfig):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"segments must be a mapping of options, got {type(value).__name__}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"unknown segments option(s) {unknown}; valid options are {sorted(known)}.")
        return cls(**value)

    @property
    def multi_vector(self) -> bool:
        """True when a document gets one vector per segment (all strategies but firstp)."""
        return self.aggregation != "firstp"


def max_over_segments(segment_scores: Tensor, mask: Tensor) -> Tensor:
    """``[Q, D, S]`` scores → ``[Q, D]``: each document's best real segment (padding never wins)."""
    floor = torch.finfo(segment_scores.dtype).min
    return segment_scores.masked_fill(~mask.unsqueeze(0), floor).amax(-1)


# -- splitting -------------------------------------------------------------------------------------
def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one text ([CLS] … [SEP], <s> …, nothing, …)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    return [], []


def split_into_segments(
    tokenizer: Any,
    texts: list[str],
    length: int,
    max_segments: int,
    overlap: int = 0,
    prefix: str = "",
    append_eos: bool = False,
) -> dict[str, Tensor]:
    """Tokenise texts into segments of at most ``length`` tokens each, every one with the tokenizer's special tokens
    and the prefix. Returns ``input_ids``/``attention_mask`` ``[segments, tokens]`` (documents' segments in order)
    and ``segment_mask [docs, max_segments]`` marking which of each document's slots hold a segment."""
    head, tail = special_tokens(tokenizer)
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    eos = [tokenizer.eos_token_id] if append_eos and tokenizer.eos_token_id is not None else []
    room = length - len(head) - len(tail) - len(prefix_ids) - len(eos)
    if room <= overlap:
        raise ConfigError(
            f"doc_length={length} leaves {room} tokens per segment after special tokens and the prefix, not more than "
            f"segments.overlap={overlap}: raise doc_length or lower the overlap."
        )
    step = room - overlap
    budget = room + (max_segments - 1) * step  # tokens the segments can hold; the rest is never read
    bodies = tokenizer([prefix + t for t in texts], add_special_tokens=False, truncation=True,
                       max_length=budget + len(prefix_ids))["input_ids"]
    sequences: list[list[int]] = []
    segment_mask = torch.zeros(len(texts), max_segments, dtype=torch.bool)
    for row, body in enumerate(bodies):
        # the prefix was tokenised with the text (as the unsegmented path does); every segment gets it
        if prefix_ids and body[: len(prefix_ids)] == prefix_ids:
            body = body[len(prefix_ids) :]
        count = max(1, min(max_segments, math.ceil(max(len(body) - overlap, 1) / step)))
        for index in range(count):
            chunk = body[index * step : index * step + room]
            sequences.append(head + prefix_ids + chunk + eos + tail)
        segment_mask[row, :count] = True
    return {**pad_sequences(sequences, tokenizer), "segment_mask": segment_mask}


def pad_sequences(sequences: list[list[int]], tokenizer: Any) -> dict[str, Tensor]:
    """Pad id lists into ``input_ids``/``attention_mask`` on the tokenizer's padding side."""
    width = max(len(s) for s in sequences)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    left = tokenizer.padding_side == "left"
    for row, sequence in enumerate(sequences):
        span = slice(width - len(sequence), width) if left else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence, dtype=torch.long)
        mask[row, span] = 1
    return {"input_ids": ids, "attention_mask": mask}


# -- the transformer head --------------------------------------------------------------------------
class SegmentHead(nn.Module):
    """A small pre-norm transformer over one document's segment vectors; its output projections start at zero,
    so an untrained head is the identity (and a fine-tuned maxp model keeps its scores at the start)."""

    def __init__(self, dim: int, max_segments: int, layers: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"segments.head_heads={heads} must divide the vector size {dim}.")
        self.order = nn.Embedding(max_segments, dim)
        nn.init.zeros_(self.order.weight)
        self.blocks = nn.ModuleList(_HeadBlock(dim, heads) for _ in range(layers))

    def forward(self, vectors: Tensor, mask: Tensor) -> Tensor:
        """``[docs, segments, dim]`` → the same shape; padding segments are neither attended to nor changed."""
        positions = torch.arange(vectors.shape[1], device=vectors.device)
        hidden = vectors + self.order(positions)
        for block in self.blocks:
            hidden = block(hidden, mask)
        return hidden.masked_fill(~mask.unsqueeze(-1), 0.0)


class _HeadBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        normed = self.norm1(hidden)
        attended, _ = self.attention(normed, normed, normed, key_padding_mask=~mask, need_weights=False)
        hidden = hidden + attended
        return hidden + self.mlp(self.norm2(hidden))


# -- the layer a bi-encoder composes ---------------------------------------------------------------
EncodeFn = Callable[..., Tensor]


class Segments(nn.Module):
    """Encodes segmented documents into :class:`SegmentedVectors` with the configured strategy.

    The family passes its own per-text document encoder (``encode(encoding, **backbone_kwargs) -> [n, dim]``);
    sedr adds ``segment_layout`` (read by the segment attention) and ``inputs_embeds`` (token + segment-order
    embeddings) to the backbone call, so any backbone whose attention goes through transformers' attention
    interface works.
    """

    def __init__(self, config: SegmentConfig, backbone: nn.Module, dim: int, pooling: str, normalize: bool) -> None:
        super().__init__()
        self.config = config
        self.normalize = normalize
        self.representation = "last" if pooling == "last" else "first"
        if pooling == "none":
            raise ConfigError("segments need one vector per segment: choose a doc_pooling other than 'none'.")
        self.order: nn.Embedding | None = None
        self.head: SegmentHead | None = None
        if config.aggregation == "sedr":
            enable_segment_attention(backbone)
            if config.segment_embeddings:
                self.order = nn.Embedding(config.max_segments, backbone.config.hidden_size)
                nn.init.zeros_(self.order.weight)
        elif config.aggregation == "transformer_head":
            self.head = SegmentHead(dim, config.max_segments, config.head_layers, config.head_heads)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model unpickled in a fresh process (DDP spawn, DataLoader workers) finds the attention registered there
        super().__setstate__(state)
        if self.config.aggregation == "sedr":
            register_segment_attention()

    def forward(self, encode: EncodeFn, backbone: nn.Module, encoding: dict[str, Tensor]) -> SegmentedVectors:
        segment_mask = encoding["segment_mask"].bool()
        flat = {k: v for k, v in encoding.items() if k != "segment_mask"}
        kwargs: dict[str, Any] = {}
        if self.config.aggregation == "sedr":
            layout = SegmentLayout.build(segment_mask, flat["attention_mask"], self.representation)
            kwargs["segment_layout"] = layout
            if self.order is not None:
                embeds = backbone.get_input_embeddings()(flat.pop("input_ids"))
                flat["inputs_embeds"] = embeds + self.order(layout.segment_index).unsqueeze(1).to(embeds.dtype)
        vectors = encode(flat, **kwargs)
        if "segment_layout" in kwargs:
            kwargs["segment_layout"].check_used()
        padded = vectors.new_zeros(*segment_mask.shape, vectors.shape[-1])
        padded[segment_mask] = vectors
        if self.head is not None:
            padded = self.head(padded, segment_mask)
            if self.normalize:
                padded = F.normalize(padded, dim=-1)
        return SegmentedVectors(padded, segment_mask)


__all__ = [
    "AGGREGATIONS",
    "SegmentConfig",
    "SegmentHead",
    "SegmentedVectors",
    "Segments",
    "max_over_segments",
    "split_into_segments",
]
