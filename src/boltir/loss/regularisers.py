"""Sparsity regularisers for learned sparse (SPLADE-style) embeddings, with SPLADE's quadratic weight warm-up.

``forward`` returns the unweighted penalty; the training step adds ``weight_at(global_step) * penalty`` to its
loss, so the schedule lives here and the step counter stays with the trainer.
"""

from __future__ import annotations

from torch import Tensor, nn

from boltir.errors import ConfigError
from boltir.loss.base import check_non_negative


class Regulariser(nn.Module):
    """Base of the sparsity regularisers: holds the weight and its warm-up schedule."""

    def __init__(self, weight: float, warmup_steps: int = 0) -> None:
        super().__init__()
        self.weight = check_non_negative("weight", weight)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def weight_at(self, step: int) -> float:
        """weight * (step / warmup_steps)**2 during warm-up, then weight (Formal et al. 2021): sparsity is
        enforced gradually, so the model first learns to rank before it learns to drop terms."""
        if step >= self.warmup_steps:
            return self.weight
        return self.weight * (max(step, 0) / self.warmup_steps) ** 2

    def forward(self, embeddings: Tensor) -> Tensor:
        """The unweighted penalty of ``[batch, vocab]`` embeddings; 0 for an empty batch."""
        if embeddings.dim() != 2:
            raise ConfigError(f"embeddings must be [batch, vocab], got shape {tuple(embeddings.shape)}")
        if embeddings.shape[0] == 0:
            return embeddings.sum()
        return self.penalty(embeddings)

    def penalty(self, embeddings: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"weight={self.weight}, warmup_steps={self.warmup_steps}"


class FLOPSRegulariser(Regulariser):
    """sum_j (mean_i |w_ij|)**2 (Paria et al. 2020): penalises terms active across the batch, a proxy for the
    number of floating point operations of retrieval with an inverted index."""

    def penalty(self, embeddings: Tensor) -> Tensor:
        return (embeddings.abs().mean(0) ** 2).sum()


class L1Regulariser(Regulariser):
    """mean_i sum_j |w_ij|: penalises every active term of every embedding equally."""

    def penalty(self, embeddings: Tensor) -> Tensor:
        return embeddings.abs().sum(-1).mean()
