"""Learned-sparse (SPLADE) pieces: saturate MLM logits, pool them over tokens, prune to the top k terms.

A sparse vector here is a ``[batch, vocab]`` tensor that is mostly zero: it trains like any dense tensor
(dot products, in-batch negatives, regularisers), and index engines keep only its non-zero entries.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...errors import ConfigError

SPARSE_POOLING = ("max", "sum")


class LogSaturation(nn.Module):
    """``log(1 + relu(x))``: non-negative term weights whose growth saturates (Formal et al., 2021)."""

    def forward(self, logits: Tensor) -> Tensor:
        return torch.log1p(torch.relu(logits))


class VocabularyPooling(nn.Module):
    """Reduce ``[batch, tokens, vocab]`` term weights to ``[batch, vocab]``: max (SPLADE v2+) or sum (SPLADE v1)."""

    def __init__(self, strategy: str = "max", overwrite: bool = False) -> None:
        super().__init__()
        if strategy not in SPARSE_POOLING:
            raise ConfigError(f"sparse pooling '{strategy}' does not exist; choose one of {list(SPARSE_POOLING)}.")
        self.strategy = strategy
        self.overwrite = overwrite  # zero padded positions in place when no gradient is needed (saves a big copy)

    def forward(self, weights: Tensor, attention_mask: Tensor) -> Tensor:
        # padded positions become 0: for weights >= 0 that removes them from the max and the sum; raw logits
        # max-pooled before ReLU are also unaffected, since a max at 0 becomes 0 after the ReLU anyway
        padding = attention_mask.unsqueeze(-1) == 0
        if self.overwrite and not weights.requires_grad:
            weights = weights.masked_fill_(padding, 0)
        else:
            weights = weights.masked_fill(padding, 0)
        return weights.amax(1) if self.strategy == "max" else weights.sum(1)

    def extra_repr(self) -> str:
        return self.strategy


class TopKPruning(nn.Module):
    """Keep each vector's ``k`` largest weights and zero the rest (bounds index size and query cost)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        if k <= 0:
            raise ConfigError(f"top-k pruning needs k > 0, got {k}.")
        self.k = k

    def forward(self, vectors: Tensor) -> Tensor:
        if self.k >= vectors.shape[-1]:
            return vectors
        values, positions = vectors.topk(self.k, dim=-1)
        return torch.zeros_like(vectors).scatter(-1, positions, values)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def restrict_to_input_tokens(vectors: Tensor, input_ids: Tensor, attention_mask: Tensor, ignore_ids: list[int]) -> Tensor:
    """Zero every vocabulary entry that is not one of the text's own tokens (SPLADE without expansion)."""
    present = torch.zeros_like(vectors).scatter_reduce(1, input_ids, attention_mask.to(vectors.dtype), "amax")
    if ignore_ids:
        present[:, ignore_ids] = 0
    return vectors * present


__all__ = ["SPARSE_POOLING", "LogSaturation", "TopKPruning", "VocabularyPooling", "restrict_to_input_tokens"]
