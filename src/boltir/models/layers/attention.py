"""Attention patterns beyond full attention, run inside any HF encoder through transformers' attention interface.

A backbone switched to the ``"boltir"`` implementation calls :func:`boltir_attention` in every self-attention
layer; the pattern comes with the forward call as ``boltir_layout=...`` (a keyword argument HF passes through to
the attention function), so one backbone serves every pattern and no dense ``tokens x tokens`` mask is built:

- :class:`WindowedLayout` (sparse cross-encoder): query tokens attend to the query, document tokens to the query
  and to a band of ``window`` document tokens on each side, the first token ([CLS]) to everything. Documents are cut
  into blocks of ``b = max(window, 16)`` tokens and each block is scored against the query and its three
  neighbouring blocks with batched matmuls, so memory grows with ``tokens x (query + 3b)``, not ``tokens^2``.
- :class:`SetLayout` (Set-Encoder): passages of one candidate list run in parallel as separate sequences; only
  each passage's first (interaction) token also attends to the interaction tokens of the other passages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ...errors import ConfigError

ATTENTION_NAME = "boltir"


def _sdpa(query: Tensor, key: Tensor, value: Tensor, keep: Tensor, scaling: float, dropout: float) -> Tensor:
    """PyTorch's fused attention with a boolean ``keep`` mask broadcast over heads and rows."""
    return F.scaled_dot_product_attention(query, key, value, attn_mask=keep, dropout_p=dropout, scale=scaling)


@dataclass
class WindowedLayout:
    """Sparse cross-encoder attention over a ``[query segment | document segment]`` layout.

    Attributes:
        key_mask: ``[batch, tokens]``, True for real tokens (padding sits at the end of each segment).
        query_tokens: length of the (padded) query segment at the front (``[CLS] query [SEP]`` plus padding);
            its first token is global: it attends to every token, and document tokens attend to it.
        window: document tokens attend to document tokens at most this many positions away; None: all of them.
        query_sees_doc: query tokens attend to the document too (False in the paper's asymmetric pattern).
        min_block: documents are cut into blocks of ``max(window, min_block)`` tokens (an exact band mask
            applies inside them); blocks narrower than this make the batched matmuls too small to run fast.
    """

    key_mask: Tensor
    query_tokens: int
    window: int | None = None
    query_sees_doc: bool = False
    min_block: int = 16

    def attend(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        """``[batch, heads, tokens, head_dim]`` outputs of the pattern."""
        p = self.query_tokens
        keep = self.key_mask[:, None, None, :]
        if self.query_sees_doc:
            head = _sdpa(query[:, :, :p], key, value, keep, scaling, dropout)
        else:  # the first token sees everything (so first-token pooling sees the document); the query only
            # itself, not even the first token, which would carry the document into it from the second layer on
            first = _sdpa(query[:, :, :1], key, value, keep, scaling, dropout)
            rest = _sdpa(query[:, :, 1:p], key[:, :, 1:p], value[:, :, 1:p], keep[..., 1:p], scaling, dropout)
            head = torch.cat([first, rest], dim=2)
        doc_tokens = query.shape[2] - p
        if doc_tokens == 0:
            return head
        if self.window is None or self.window >= doc_tokens:
            body = _sdpa(query[:, :, p:], key, value, keep, scaling, dropout)
        elif torch.is_grad_enabled() and query.requires_grad:
            # recompute the band in the backward pass instead of keeping its scores and block copies: the band
            # is cheap to redo (tokens x window), and only query/key/value stay saved, as with a fused kernel
            body = checkpoint(self._banded, query, key, value, scaling, dropout, use_reentrant=False)
        else:
            body = self._banded(query, key, value, scaling, dropout)
        return torch.cat([head, body], dim=2)

    def _banded(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        """Document rows: attend to the query segment and to a band of ``window`` document tokens each side."""
        batch, heads, tokens, dim = query.shape
        p, window = self.query_tokens, int(self.window)  # type: ignore[arg-type]
        w = max(window, self.min_block)  # block width: blocks narrower than ~16 make matmuls too small to be fast
        doc = tokens - p
        blocks = math.ceil(doc / w)
        pad = blocks * w - doc
        # documents in blocks of w, block dimension first: the previous/own/next blocks are then contiguous slices
        q_doc = F.pad(query[:, :, p:], (0, 0, 0, pad))  # [B, h, blocks*w, d]
        q_blocks = _block_major(q_doc, blocks, w)  # [blocks, B, h, w, d]
        k_blocks = _block_major(F.pad(key[:, :, p:], (0, 0, w, w + pad)), blocks + 2, w)
        v_blocks = _block_major(F.pad(value[:, :, p:], (0, 0, w, w + pad)), blocks + 2, w)
        real = F.pad(self.key_mask[:, p:], (w, w + pad), value=False).unflatten(1, (blocks + 2, w)).transpose(0, 1)

        to_query = (q_doc @ key[:, :, :p].transpose(-1, -2)).unflatten(2, (blocks, w)).permute(2, 0, 1, 3, 4)
        neighbours = [slice(0, blocks), slice(1, blocks + 1), slice(2, blocks + 2)]
        to_band = [q_blocks @ k_blocks[s].transpose(-1, -2) for s in neighbours]
        scores = torch.cat([to_query, *to_band], dim=-1) * scaling  # [blocks, B, h, w, p + 3w]

        rows = torch.arange(w, device=query.device)
        offsets = torch.arange(-w, 2 * w, device=query.device)
        band = (offsets[None, :] - rows[:, None]).abs() <= window  # [w, 3w]: |i - j| <= window
        band_keys = torch.cat([real[s] for s in neighbours], dim=-1)  # [blocks, B, 3w]
        keep = torch.cat(
            [
                self.key_mask[:, :p][None, :, None, None, :].expand(blocks, batch, 1, w, p),
                band_keys[:, :, None, None, :] & band[None, None, None],
            ],
            dim=-1,
        )
        exact = torch.float32 if query.dtype in (torch.float16, torch.bfloat16) else query.dtype
        probs = scores.masked_fill(~keep, float("-inf")).softmax(-1, dtype=exact).to(query.dtype)
        probs = F.dropout(probs, p=dropout, training=dropout > 0)
        p_query, *p_band = probs.split([p, w, w, w], dim=-1)
        local = sum(pb @ v_blocks[s] for pb, s in zip(p_band, neighbours))  # [blocks, B, h, w, d]
        out = local.permute(1, 2, 0, 3, 4).reshape(batch, heads, blocks * w, dim)
        out = out + p_query.permute(1, 2, 0, 3, 4).reshape(batch, heads, blocks * w, p) @ value[:, :, :p]
        return out[:, :, :doc]


def _block_major(x: Tensor, blocks: int, width: int) -> Tensor:
    """``[B, h, blocks*width, d]`` → ``[blocks, B, h, width, d]`` (contiguous)."""
    return x.unflatten(2, (blocks, width)).permute(2, 0, 1, 3, 4).contiguous()


@dataclass
class SetLayout:
    """Set-Encoder attention: one sequence per passage; interaction tokens (position 0) see each other per list.

    Attributes:
        key_mask: ``[passages, tokens]``, True for real tokens.
        members: ``[passages, others]`` indices of the other passages of the same list (any valid index where padded).
        member_mask: ``[passages, others]``, True where ``members`` names a real other passage.
    """

    key_mask: Tensor
    members: Tensor
    member_mask: Tensor

    @classmethod
    def from_list_sizes(cls, key_mask: Tensor, list_sizes: list[int]) -> SetLayout:
        """The layout of consecutive passages forming lists of the given sizes."""
        if sum(list_sizes) != key_mask.shape[0]:
            raise ConfigError(f"list sizes {list_sizes} do not add up to {key_mask.shape[0]} passages.")
        others = max(max(list_sizes, default=1) - 1, 1)
        members = torch.zeros(key_mask.shape[0], others, dtype=torch.long)
        member_mask = torch.zeros(key_mask.shape[0], others, dtype=torch.bool)
        start = 0
        for size in list_sizes:
            if size > 1:  # row i: the list's other passages, in list order
                others_of = torch.arange(size).repeat(size, 1)[~torch.eye(size, dtype=torch.bool)].view(size, size - 1)
                members[start : start + size, : size - 1] = others_of + start
                member_mask[start : start + size, : size - 1] = True
            start += size
        device = key_mask.device
        return cls(key_mask, members.to(device), member_mask.to(device))

    def attend(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        keep = self.key_mask[:, None, None, :]
        out = _sdpa(query, key, value, keep, scaling, dropout)  # every token within its own passage
        # interaction tokens: own passage plus the other passages' interaction tokens (a set: order-free)
        other_keys = key[:, :, 0][self.members].transpose(1, 2)  # [S, h, others, d]
        other_values = value[:, :, 0][self.members].transpose(1, 2)
        keys = torch.cat([key, other_keys], dim=2)
        values = torch.cat([value, other_values], dim=2)
        keep_all = torch.cat([self.key_mask, self.member_mask], dim=1)[:, None, None, :]
        first = _sdpa(query[:, :, :1], keys, values, keep_all, scaling, dropout)
        return torch.cat([first, out[:, :, 1:]], dim=2)


AttentionLayout = WindowedLayout | SetLayout


def boltir_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    boltir_layout: AttentionLayout | None = None,
    **kwargs,
) -> tuple[Tensor, None]:
    """transformers' attention-function signature; the pattern (and padding) come from ``boltir_layout``."""
    if boltir_layout is None:
        raise ConfigError("a backbone using boltir attention was called without boltir_layout; call it through its boltir model.")
    if key.shape[1] != query.shape[1]:  # grouped-query attention: share each key/value head among its query heads
        key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
        value = value.repeat_interleave(query.shape[1] // value.shape[1], dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = boltir_layout.attend(query, key, value, scale, dropout)
    return out.transpose(1, 2).contiguous(), None


def use_boltir_attention(backbone: torch.nn.Module) -> None:
    """Switch an HF backbone's self-attention to :func:`boltir_attention` (registered with transformers once)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, boltir_attention)
    try:
        backbone.set_attn_implementation(ATTENTION_NAME)
    except (ValueError, AttributeError) as exc:
        raise ConfigError(
            f"the {type(backbone).__name__} backbone does not run pluggable attention ({exc}); "
            "use attention='full' or a BERT-style encoder."
        ) from None


__all__ = ["ATTENTION_NAME", "AttentionLayout", "SetLayout", "WindowedLayout", "boltir_attention", "use_boltir_attention"]
