"""Pooling of token states into one vector: small modules chosen by name in a config."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...errors import ConfigError

POOLING_STRATEGIES = ("cls", "first", "mean", "sum", "max", "last", "none")


class Pooling(nn.Module):
    """Reduce ``[batch, tokens, dim]`` states to ``[batch, dim]`` under an attention mask.

    ``cls`` and ``first`` take position 0 (the same thing, named for encoders and for decoders);
    ``last`` takes the last real token whichever side the padding is on, as decoder LLMs need;
    ``none`` keeps every token (multi-vector models); ``sum`` adds the real tokens' states (Lightning IR's
    ``sum`` pooling: the vector's length grows with the text's). ``mean`` and ``sum`` return float32 whatever the
    states' dtype.
    """

    def __init__(self, strategy: str) -> None:
        super().__init__()
        if strategy not in POOLING_STRATEGIES:
            raise ConfigError(f"pooling '{strategy}' does not exist; choose one of {list(POOLING_STRATEGIES)}.")
        self.strategy = strategy

    def forward(self, states: Tensor, attention_mask: Tensor) -> Tensor:
        if self.strategy in ("cls", "first"):
            return states[:, 0]
        if self.strategy == "none":
            return states
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        if self.strategy in ("mean", "sum"):  # summed in float32: hundreds of bf16 terms would lose the low bits
            total = (states * mask).sum(1, dtype=torch.float32)
            return total if self.strategy == "sum" else total / mask.sum(1, dtype=torch.float32).clamp(min=1e-9)
        if self.strategy == "max":
            return states.masked_fill(mask == 0, torch.finfo(states.dtype).min).amax(1)
        # last: the highest position holding a real token, so left and right padding both work
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.bool() * positions).amax(1)
        return states[torch.arange(states.shape[0], device=states.device), last]

    def packed(self, states: Tensor, cu_seqlens: Tensor) -> Tensor:
        """:meth:`forward` for sequences laid end to end without padding: ``[tokens, dim]`` states, each sequence
        starting at ``cu_seqlens[i]`` (``[sequences + 1]``, the total last); ``cls``, ``first`` and ``mean`` only."""
        starts = cu_seqlens.long()
        if self.strategy in ("cls", "first"):
            return states[starts[:-1]]
        if self.strategy != "mean":
            raise ConfigError(f"pooling '{self.strategy}' does not run on packed sequences; use cls, first or mean.")
        lengths = starts[1:] - starts[:-1]
        sequence = torch.repeat_interleave(torch.arange(len(lengths), device=states.device), lengths,
                                           output_size=states.shape[0])  # known size: no wait for the GPU
        sums = states.new_zeros(len(lengths), states.shape[-1], dtype=torch.float32).index_add_(0, sequence, states.float())
        return sums / lengths.clamp(min=1).unsqueeze(1).float()

    def extra_repr(self) -> str:
        return self.strategy
