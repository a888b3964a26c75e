"""Sequences packed end to end in one row, without padding, for full attention through :class:`PackedLayout`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...data.batches import pin_tensor
from .attention import PackedLayout


@dataclass
class PackedTokens:
    """A batch of sequences laid end to end in one row of ``total`` tokens.

    Attributes:
        inputs: the backbone's inputs, ``[1, total]`` each: ``input_ids``, ``position_ids`` (each token's position
            in its own sequence) and, where the tokenizer makes them, ``token_type_ids``.
        cu_seqlens: ``[sequences + 1]`` int32, where each sequence starts in the row (and the row's length, last).
        max_length: the longest sequence's length.
    """

    inputs: dict[str, Tensor]
    cu_seqlens: Tensor
    max_length: int

    @classmethod
    def from_padded(cls, inputs: dict[str, Tensor], position_offset: int = 0) -> PackedTokens:
        """Pack padded ``[batch, width]`` inputs (padding on either side), positions counted from ``position_offset``
        (RoBERTa-style embeddings count from ``padding_idx + 1``)."""
        mask = inputs["attention_mask"].bool()
        lengths = mask.sum(1)
        packed = {k: v[mask].unsqueeze(0) for k, v in inputs.items() if k not in ("attention_mask", "position_ids")}
        packed["position_ids"] = (mask.long().cumsum(1) - 1)[mask].unsqueeze(0) + position_offset
        starts = torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
        return cls(packed, starts, int(lengths.max()) if len(lengths) else 0)

    def layout(self) -> PackedLayout:
        """The attention pattern of these sequences (each attends to itself alone)."""
        return PackedLayout(self.cu_seqlens, self.max_length)

    def to(self, device: torch.device | str) -> PackedTokens:
        inputs = {k: v.to(device, non_blocking=True) for k, v in self.inputs.items()}
        return PackedTokens(inputs, self.cu_seqlens.to(device, non_blocking=True), self.max_length)

    def pin_memory(self) -> PackedTokens:
        """Page-locked copies, so the copy to a GPU overlaps its work (``to`` does not wait for it); see
        :func:`~boltir.data.batches.pin_tensor`."""
        return PackedTokens({k: pin_tensor(v) for k, v in self.inputs.items()}, pin_tensor(self.cu_seqlens),
                            self.max_length)

    def padded(self) -> dict[str, Tensor]:
        """The padded batch (right padding) these sequences were packed from: ``input_ids``, ``attention_mask``
        and, where packed, ``token_type_ids`` (for a model that turns out not to run packed)."""
        lengths = (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).long()
        width = int(self.max_length)
        mask = torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]
        out: dict[str, Tensor] = {}
        for name, values in self.inputs.items():
            if name == "position_ids":
                continue
            grid = values.new_zeros(len(lengths), width)
            grid[mask] = values[0]
            out[name] = grid
        out["attention_mask"] = mask.long()
        return out

    def __len__(self) -> int:
        return len(self.cu_seqlens) - 1


__all__ = ["PackedTokens"]
