"""SeDR's segment interaction, as an attention function in transformers' attention interface.

The segments of a batch run in parallel as ordinary sequences. In every layer, attention is first computed
as usual with PyTorch's fused SDPA (each token sees its own segment). Then the one representation token of
each segment also attends to the representation tokens of the other segments of the same document: its own
scores' log-sum-exp merges the SDPA output with the other segments' keys and values (as flash attention merges
key blocks), and the result is written over that token's output. So only representation tokens exchange
information across segments, and the extra work per layer is one query per segment against its own keys
plus ``segments`` more: no dense (all tokens x all tokens) mask, no second pass over the values.

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
    own_output: Tensor,
    layout: SegmentLayout,
    dropout: float,
    scaling: float | None,
) -> Tensor:
    """``[N, heads, dim]``: each representation token attending to its own segment and the document's other ones.

    The plain attention already gave each representation token ``own_output``, the softmax-weighted values of its
    own segment; only the log-sum-exp of its own scores is still needed to merge in the other segments' keys and
    values (the same merge flash attention does between key blocks). So the own values are never read again.
    """
    segments, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads  # grouped-query attention: query head h reads key/value head h // groups
    rows, positions = torch.arange(segments, device=query.device), layout.positions
    scale = scaling if scaling is not None else dim**-0.5
    # [N, L, heads, dim] is how the projections are laid out: gathering one position per segment there is cheap
    q = query.transpose(1, 2)[rows, positions].reshape(segments, kv_heads, groups, dim)
    rep_keys, rep_values = key.transpose(1, 2)[rows, positions], value.transpose(1, 2)[rows, positions]
    other_keys, other_values = rep_keys[layout.others], rep_values[layout.others]  # [N, S, kv_heads, dim]
    own = torch.matmul(q, key.contiguous().transpose(-1, -2)).float() * scale  # [N, kv_heads, groups, L]
    own = own.masked_fill(~_visible_row(attention_mask, module, positions, length)[:, None, None, :], float("-inf"))
    other = torch.einsum("nkgd,nskd->nkgs", q, other_keys).float() * scale  # [N, kv_heads, groups, S]
    other = other.masked_fill(~layout.others_mask[:, None, None, :], float("-inf"))
    own_lse = own.logsumexp(-1, keepdim=True)
    total_lse = torch.cat([own_lse, other], -1).logsumexp(-1, keepdim=True)
    other_probs = F.dropout((other - total_lse).exp(), p=dropout, training=dropout > 0)
    merged = (own_lse - total_lse).exp() * own_output.reshape(segments, kv_heads, groups, dim).float()
    merged = merged + torch.einsum("nkgs,nskd->nkgd", other_probs, other_values.float())
    return merged.reshape(segments, heads, dim)


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
    rows = torch.arange(output.shape[0], device=output.device)
    index = (rows, segment_layout.positions)  # output is [N, L, heads, dim]
    interacted = representation_attention(
        module, query, key, value, attention_mask, output[index], segment_layout, dropout, scaling
    ).to(output.dtype)
    if torch.is_grad_enabled():  # out of place: autograd may have saved the attention output
        return output.index_put(index, interacted), weights
    return output.index_put_(index, interacted), weights


def register_segment_attention() -> None:
    """Make the segment attention known to transformers in this process (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, segment_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def enable_segment_attention(backbone: nn.Module) -> None:
    """Register the segment attention with transformers and switch ``backbone`` to it."""
    register_segment_attention()
    if not hasattr(backbone, "set_attn_implementation"):
        raise ConfigError(f"{type(backbone).__name__} is not a transformers model: SeDR needs one.")
    backbone.set_attn_implementation(ATTENTION_NAME)
    if getattr(backbone.config, "_attn_implementation", None) != ATTENTION_NAME:
        raise ConfigError(
            f"{type(backbone).__name__} cannot switch its attention implementation, so SeDR's segment interaction "
            "cannot run on it: choose segments.aggregation 'maxp' or 'transformer_head' for this model."
        )


__all__ = [
    "ATTENTION_NAME",
    "SegmentLayout",
    "enable_segment_attention",
    "register_segment_attention",
    "representation_attention",
    "segment_attention",
]
