"""SeDR's segment interaction, as an attention function in transformers' attention interface.

The segments of a batch run in parallel as ordinary sequences. In every layer, attention is first computed
as usual with PyTorch's fused SDPA (each token sees its own segment). Then, for the one representation token
of each segment, attention is recomputed over its own segment's keys *plus* the representation tokens' keys of
the other segments of the same document, and written over that token's output. So only representation tokens
exchange information across segments, and the extra work is one query per segment over ``length + segments``
keys: no dense (all tokens x all tokens) mask, no copy of the key tensor.

Why an attention function rather than a patched layer: transformers 5 routes every modern model's attention
(BERT, RoBERTa, ELECTRA, DistilBERT, Llama, Qwen2, …) through ``ALL_ATTENTION_FUNCTIONS`` and forwards
extra keyword arguments of the model call down to it. Registering one function there and passing the
document layout as ``segment_layout=`` makes the mechanism backbone-agnostic, with no copied model code.
Without ``segment_layout`` (queries, unsegmented texts) the function is plain SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError

ATTENTION_NAME = "boltir_segments"


@dataclass
class SegmentLayout:
    """Which flat segment belongs to which document, and where each segment's representation token sits.

    Attributes:
        positions: ``[N]`` index of the representation token in each of the N segments.
        segment_index: ``[N]`` order of each segment within its document (0 = first).
        others: ``[N, S]`` flat index of the segments of the same document (any valid index where padded).
        others_mask: ``[N, S]`` True where ``others`` is another real segment of the same document.
    """

    positions: Tensor
    segment_index: Tensor
    others: Tensor
    others_mask: Tensor
    calls: int = 0

    @classmethod
    def build(cls, segment_mask: Tensor, attention_mask: Tensor, representation: str) -> SegmentLayout:
        """From ``segment_mask [docs, S]`` (segments flattened doc by doc) and the segments' ``attention_mask``."""
        segment_mask = segment_mask.bool()
        docs, slots = segment_mask.nonzero(as_tuple=True)
        flat_index = (segment_mask.flatten().long().cumsum(0) - 1).view_as(segment_mask).clamp(min=0)
        width = segment_mask.shape[1]
        others_mask = segment_mask[docs] & (torch.arange(width, device=slots.device) != slots.unsqueeze(1))
        real = attention_mask.bool()
        columns = torch.arange(real.shape[1], device=real.device)
        if representation == "last":  # the last real token, whichever side the padding is on
            positions = (real * columns).amax(1)
        else:  # the first real token (position 0 under right padding)
            positions = torch.where(real, columns, real.shape[1]).amin(1)
        return cls(positions, slots, flat_index[docs], others_mask)

    def check_used(self) -> None:
        """Raise if the backbone never called the segment attention (it would silently be maxp)."""
        if self.calls == 0:
            raise ConfigError(
                "the backbone did not route attention through transformers' attention interface, so SeDR's segment "
                "interaction cannot run on it: choose segments.aggregation 'maxp' or 'transformer_head' for this model."
            )


def _visible_row(attention_mask: Tensor | None, module: nn.Module, positions: Tensor, length: int) -> Tensor:
    """``[N, L]`` keys of its own segment that each representation token may see."""
    rows = torch.arange(positions.shape[0], device=positions.device)
    if attention_mask is None:
        columns = torch.arange(length, device=positions.device).expand(positions.shape[0], -1)
        causal = bool(getattr(module, "is_causal", False))
        return columns <= positions.unsqueeze(1) if causal else torch.ones_like(columns, dtype=torch.bool)
    mask = attention_mask.expand(positions.shape[0], -1, -1, -1)[rows, 0, positions]
    if mask.dtype == torch.bool:
        return mask
    return mask > torch.finfo(mask.dtype).min / 2  # an additive float mask: 0 where visible


def representation_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    layout: SegmentLayout,
    dropout: float,
    scaling: float | None,
) -> Tensor:
    """``[N, heads, dim]``: each representation token attending to its segment and the document's other ones."""
    segments, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    rows = torch.arange(segments, device=query.device)
    positions = layout.positions
    scale = scaling if scaling is not None else dim**-0.5
    # grouped-query attention: query head h reads key/value head h // groups (as transformers' repeat_kv)
    q = query[rows, :, positions].reshape(segments, kv_heads, heads // kv_heads, dim)
    rep_keys, rep_values = key[rows, :, positions], value[rows, :, positions]  # [N, kv_heads, dim]
    other_keys, other_values = rep_keys[layout.others], rep_values[layout.others]  # [N, S, kv_heads, dim]
    own = torch.einsum("nkgd,nkld->nkgl", q, key)
    other = torch.einsum("nkgd,nskd->nkgs", q, other_keys)
    scores = torch.cat([own, other], -1).float() * scale
    visible = torch.cat([_visible_row(attention_mask, module, positions, length), layout.others_mask], -1)
    scores = scores.masked_fill(~visible[:, None, None, :], float("-inf"))
    probs = F.dropout(scores.softmax(-1), p=dropout, training=dropout > 0).to(value.dtype)
    out = torch.einsum("nkgl,nkld->nkgd", probs[..., :length], value)
    out = out + torch.einsum("nkgs,nskd->nkgd", probs[..., length:], other_values)
    return out.reshape(segments, heads, dim)


def segment_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    segment_layout: SegmentLayout | None = None,
    **kwargs: Any,
) -> tuple[Tensor, Tensor | None]:
    """transformers' SDPA attention, then SeDR's segment interaction for the representation tokens."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output, weights = sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )
    if segment_layout is None:
        return output, weights
    segment_layout.calls += 1
    interacted = representation_attention(module, query, key, value, attention_mask, segment_layout, dropout, scaling)
    rows = torch.arange(output.shape[0], device=output.device)
    # output is [N, L, heads, dim]; index_put (not in place) keeps autograd's saved tensors intact
    return output.index_put((rows, segment_layout.positions), interacted.to(output.dtype)), weights


def enable_segment_attention(backbone: nn.Module) -> None:
    """Register the segment attention with transformers (once) and switch ``backbone`` to it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, segment_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    if not hasattr(backbone, "set_attn_implementation"):
        raise ConfigError(f"{type(backbone).__name__} is not a transformers model: SeDR needs one.")
    backbone.set_attn_implementation(ATTENTION_NAME)
    if getattr(backbone.config, "_attn_implementation", None) != ATTENTION_NAME:
        raise ConfigError(
            f"{type(backbone).__name__} cannot switch its attention implementation, so SeDR's segment interaction "
            "cannot run on it: choose segments.aggregation 'maxp' or 'transformer_head' for this model."
        )


__all__ = ["ATTENTION_NAME", "SegmentLayout", "enable_segment_attention", "representation_attention", "segment_attention"]
