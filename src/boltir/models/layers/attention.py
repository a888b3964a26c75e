"""Attention patterns beyond full attention, run inside any HF encoder through transformers' attention interface.

A backbone switched to the ``"boltir"`` implementation calls :func:`boltir_attention` in every self-attention
layer; the pattern comes with the forward call as ``boltir_layout=...`` (a keyword argument HF passes through to
the attention function), so one backbone serves every pattern and no dense ``tokens x tokens`` mask is built.
Called without a layout, the backbone attends exactly as transformers' ``sdpa`` implementation does (same mask,
same kernel call), so switching a backbone changes nothing until a layout is passed:

- :class:`WindowedLayout` (sparse cross-encoder): query tokens attend to the query, document tokens to the query
  and to a band of ``window`` document tokens on each side, the first token ([CLS]) to everything. Documents are cut
  into blocks of ``b = max(window, 16)`` tokens and each block is scored against the query and its three
  neighbouring blocks with batched matmuls, so memory grows with ``tokens x (query + 3b)``, not ``tokens^2``.
- :class:`SetLayout` (Set-Encoder): passages of one candidate list run in parallel as separate sequences; every
  token also attends to the interaction tokens of the other passages (Lightning IR's pattern).
- :class:`PackedLayout` (full attention, no padding): sequences laid end to end in one row of ``total`` tokens; on a
  GPU in half precision PyTorch's variable-length flash kernel runs it, so no work is spent on padding and no mask
  is read (the padded path runs the memory-efficient kernel, the only fused one that takes a padding mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, cached_property

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
    """Set-Encoder attention: one sequence per passage; every token also attends to the other passages of its list
    through their interaction tokens, as Lightning IR's Set-Encoder does (Schlatt et al., 2025).

    A token's keys are its own passage's tokens plus the other passages' interaction tokens (the set of them: order
    does not matter, so scores are permutation-invariant); the interaction token is the first token, or the one
    after it where the tokenizer adds one (Lightning IR's ``add_extra_token``).

    Attributes:
        key_mask: ``[passages, tokens]``, True for real tokens.
        members: ``[passages, others]`` indices of the other passages of the same list (any valid index where padded).
        member_mask: ``[passages, others]``, True where ``members`` names a real other passage.
        interaction: the position of each passage's interaction token.
        list_sizes: how many consecutive passages form each list.
        depth: lists shorter than this also see ``depth - size`` interaction states drawn at random from a normal with
            their list's mean and standard deviation per dimension, in every layer (Lightning IR's ``depth`` with
            ``sample_missing_docs``: a model trained on short lists then sees as many others as at inference);
            None draws none. The draws happen in :func:`draw_missing_interactions`, a hook on each attention layer.
    """

    key_mask: Tensor
    members: Tensor
    member_mask: Tensor
    interaction: int = 0
    list_sizes: tuple[int, ...] = ()
    depth: int | None = None

    def __post_init__(self) -> None:
        self.drawn: tuple[Tensor, Tensor, Tensor] | None = None  # this layer's drawn keys, values and their mask

    @classmethod
    def from_list_sizes(cls, key_mask: Tensor, list_sizes: list[int], interaction: int = 0,
                        depth: int | None = None) -> SetLayout:
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
        return cls(key_mask, members.to(device), member_mask.to(device), interaction, tuple(list_sizes), depth)

    def attend(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        i = self.interaction
        other_keys = key[:, :, i][self.members].transpose(1, 2)  # [S, h, others, d]
        other_values = value[:, :, i][self.members].transpose(1, 2)
        keys, values, masks = [key, other_keys], [value, other_values], [self.key_mask, self.member_mask]
        if self.drawn is not None:
            drawn_keys, drawn_values, drawn_mask = self.drawn
            keys.append(drawn_keys.to(key.dtype))
            values.append(drawn_values.to(value.dtype))
            masks.append(drawn_mask)
        keep = torch.cat(masks, dim=1)[:, None, None, :]
        return _sdpa(query, torch.cat(keys, dim=2), torch.cat(values, dim=2), keep, scaling, dropout)

    def draw_missing(self, hidden_states: Tensor, key: torch.nn.Module, value: torch.nn.Module, heads: int) -> None:
        """Draw each short list's missing interaction states from this layer's inputs and project them (see depth)."""
        self.drawn = None
        missing = [max(self.depth - n, 0) for n in self.list_sizes] if self.depth is not None else []
        width = max(missing, default=0)
        if width == 0:
            return
        states = hidden_states[:, self.interaction]  # [S, hidden]
        rows, start = [], 0
        for n, m in zip(self.list_sizes, missing):
            own = states[start : start + n]
            mean = own.mean(0, keepdim=True).expand(width, -1)
            std = own.std(0, keepdim=True).expand(width, -1) if n > 1 else torch.zeros_like(mean)
            rows.append(torch.normal(mean.float(), std.float()).to(states.dtype).expand(n, -1, -1))
            start += n
        drawn = torch.cat(rows)  # [S, width, hidden]; a list draws ``width`` and keeps its first ``missing``
        mask = torch.arange(width, device=states.device)[None, :] < torch.tensor(
            [m for n, m in zip(self.list_sizes, missing) for _ in range(n)], device=states.device)[:, None]

        def heads_first(x: Tensor) -> Tensor:
            return x.view(x.shape[0], width, heads, -1).transpose(1, 2)

        self.drawn = (heads_first(key(drawn)), heads_first(value(drawn)), mask)


def draw_missing_interactions(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    """A forward pre-hook for a BERT-style self-attention layer: where the call's layout is a :class:`SetLayout`
    with a depth, draw the missing interaction states from the layer's input before it attends."""
    layout = kwargs.get("boltir_layout")
    if isinstance(layout, SetLayout) and layout.depth is not None:
        hidden = args[0] if args else kwargs["hidden_states"]
        layout.draw_missing(hidden, module.key, module.value, module.num_attention_heads)


@cache
def _varlen_kernel():
    """PyTorch's variable-length flash attention (``torch.nn.attention.varlen``, torch 2.10+), or None."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def varlen_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether :class:`PackedLayout` runs the variable-length flash kernel for tensors of this device and dtype:
    a CUDA GPU of compute capability 8.0 or later (flash attention's), fp16 or bf16, and torch 2.10 or later."""
    return (device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and _varlen_kernel() is not None
            and _flash_capable(device.index if device.index is not None else torch.cuda.current_device()))


@cache
def _flash_capable(index: int) -> bool:
    return torch.cuda.get_device_capability(index) >= (8, 0)


@dataclass
class PackedLayout:
    """Full attention over sequences laid end to end in one row, without padding: ``[1, heads, total, head_dim]``.

    Attributes:
        cu_seqlens: ``[sequences + 1]`` int32, where each sequence starts in the row (and the row's length, last).
        max_length: the longest sequence's length.
    """

    cu_seqlens: Tensor
    max_length: int

    @cached_property
    def _slots(self) -> tuple[Tensor, Tensor]:
        """Each packed token's (sequence, position in it): where it sits in a padded ``[sequences, max_length]``."""
        starts = self.cu_seqlens.long()
        lengths = starts[1:] - starts[:-1]
        sequence = torch.repeat_interleave(torch.arange(len(lengths), device=starts.device), lengths)
        return sequence, torch.arange(int(starts[-1]), device=starts.device) - starts[:-1][sequence]

    def attend(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        if dropout == 0.0 and varlen_runs(query.device, query.dtype):
            q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # [total, heads, head_dim]
            # the scale is passed only where it is not the kernel's default: torch 2.10's kernel takes no scale
            scale = {} if math.isclose(scaling, query.shape[-1] ** -0.5) else {"scale": scaling}
            kernel = _varlen_kernel()
            out = kernel(q, k, v, self.cu_seqlens, self.cu_seqlens, self.max_length, self.max_length, **scale)
            return out.transpose(0, 1).unsqueeze(0)
        return self._padded(query, key, value, scaling, dropout)

    def _padded(self, query: Tensor, key: Tensor, value: Tensor, scaling: float, dropout: float) -> Tensor:
        """The same attention through padded rows and a mask (CPUs, float32, attention dropout)."""
        sequence, position = self._slots
        rows = len(self.cu_seqlens) - 1

        def pad(x: Tensor) -> Tensor:
            out = x.new_zeros(rows, x.shape[1], self.max_length, x.shape[-1])
            out[sequence, :, position] = x[0].transpose(0, 1)
            return out

        keep = torch.zeros(rows, self.max_length, dtype=torch.bool, device=query.device)
        keep[sequence, position] = True
        out = _sdpa(pad(query), pad(key), pad(value), keep[:, None, None, :], scaling, dropout)
        return out[sequence, :, position].transpose(0, 1).unsqueeze(0)


AttentionLayout = WindowedLayout | SetLayout | PackedLayout


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
    """transformers' attention-function signature; the pattern (and padding) come from ``boltir_layout``, or
    without one from ``attention_mask``, as transformers' sdpa attention takes it."""
    if boltir_layout is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    if key.shape[1] != query.shape[1]:  # grouped-query attention: share each key/value head among its query heads
        key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
        value = value.repeat_interleave(query.shape[1] // value.shape[1], dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = boltir_layout.attend(query, key, value, scale, dropout)
    return out.transpose(1, 2).contiguous(), None


def register_boltir_attention() -> None:
    """Make :func:`boltir_attention` known to transformers in this process (idempotent); its masks are built as
    for sdpa, for the calls without a layout."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, boltir_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def use_boltir_attention(backbone: torch.nn.Module) -> None:
    """Switch an HF backbone's self-attention to :func:`boltir_attention`."""
    register_boltir_attention()
    try:
        backbone.set_attn_implementation(ATTENTION_NAME)
    except (ValueError, AttributeError) as exc:
        raise ConfigError(
            f"the {type(backbone).__name__} backbone does not run pluggable attention ({exc}); "
            "use attention='full' or a BERT-style encoder."
        ) from None


def try_boltir_attention(backbone: torch.nn.Module) -> bool:
    """Switch ``backbone`` to :func:`boltir_attention` where it runs pluggable attention (BERT, ELECTRA, RoBERTa, ...)
    and uses transformers' sdpa (eager attention, asked for explicitly, is left alone); True if it was switched."""
    if getattr(getattr(backbone, "config", None), "_attn_implementation", None) not in ("sdpa", ATTENTION_NAME):
        return False
    try:
        use_boltir_attention(backbone)
    except ConfigError:
        return False
    return True


__all__ = ["ATTENTION_NAME", "AttentionLayout", "PackedLayout", "SetLayout", "WindowedLayout", "boltir_attention",
           "draw_missing_interactions",
           "register_boltir_attention", "try_boltir_attention", "use_boltir_attention", "varlen_runs"]
