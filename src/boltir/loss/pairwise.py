"""Pairwise losses over every pair (i, j) of real entries of a query with target_i > target_j.

Each query's loss is the mean over its pairs; a query without such a pair (all targets tied, e.g. all zero)
contributes 0.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from boltir.loss.base import RankingLoss, check_non_negative, masked_mean


class PairwiseLoss(RankingLoss):
    """Base of the pairwise losses: subclasses give the loss of one pair from its score and target differences."""

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        # [q, i, j] = x_i - x_j
        score_diff = scores[:, :, None] - scores[:, None, :]
        target_diff = targets[:, :, None] - targets[:, None, :]
        is_pair = mask[:, :, None] & mask[:, None, :] & (target_diff > 0)
        return masked_mean(self.pair_loss(score_diff, target_diff), is_pair, dim=(1, 2))

    def pair_loss(self, score_diff: Tensor, target_diff: Tensor) -> Tensor:
        """Loss of each pair, where ``score_diff`` = s_i - s_j and ``target_diff`` = t_i - t_j > 0."""
        raise NotImplementedError


class MarginMSELoss(PairwiseLoss):
    """Squared error between the student's and the teacher's score margins (Hofstätter et al. 2020).

    Targets are teacher scores. Pairs the teacher ties are skipped (there is no better document to learn).
    """

    name: ClassVar[str] = "margin_mse"

    def pair_loss(self, score_diff: Tensor, target_diff: Tensor) -> Tensor:
        return (score_diff - target_diff) ** 2


class ConstantMarginMSELoss(PairwiseLoss):
    """Squared error between each pair's score margin and a constant ``margin`` (Lightning IR's ConstantMarginMSE):
    the better entry should win by exactly ``margin``, however much better the targets say it is."""

    name: ClassVar[str] = "constant_margin_mse"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_non_negative("margin", margin)

    def pair_loss(self, score_diff: Tensor, target_diff: Tensor) -> Tensor:
        return (score_diff - self.margin) ** 2

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


class RankNetLoss(PairwiseLoss):
    """Logistic loss log(1 + exp(-(s_i - s_j))) per pair (Burges et al. 2005): the better entry should score higher."""

    name: ClassVar[str] = "ranknet"

    def pair_loss(self, score_diff: Tensor, target_diff: Tensor) -> Tensor:
        return F.softplus(-score_diff)  # softplus stays finite for large score gaps


class HingeLoss(PairwiseLoss):
    """max(0, margin - (s_i - s_j)) on each pair: the better entry should win by at least ``margin``."""

    name: ClassVar[str] = "hinge"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_non_negative("margin", margin)

    def pair_loss(self, score_diff: Tensor, target_diff: Tensor) -> Tensor:
        return F.relu(self.margin - score_diff)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
