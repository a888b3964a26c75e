"""Pointwise losses: each entry is scored against its own target, independent of the rest of the list."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from boltir.loss.base import RankingLoss, masked_mean


class MSELoss(RankingLoss):
    """Squared error between scores and targets (e.g. teacher scores), averaged over a query's real entries."""

    name: ClassVar[str] = "mse"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        return masked_mean((scores - targets) ** 2, mask)


class BCELoss(RankingLoss):
    """Binary cross entropy between sigmoid(scores) and targets in [0, 1], averaged over a query's real entries.

    Computed from the logits, so large scores do not overflow. Targets outside [0, 1] are not checked (that would
    cost a device sync every step) and give a meaningless loss.
    """

    name: ClassVar[str] = "bce"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        return masked_mean(F.binary_cross_entropy_with_logits(scores, targets, reduction="none"), mask)
