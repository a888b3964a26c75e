"""Listwise losses: each query's whole list of scores is compared with its whole list of targets.

Relevance-label losses (InfoNCE, ApproxNDCG, ApproxMRR) give 0 for a query without a positive (target > 0);
distribution losses (KL divergence, ListNet) read targets through a softmax, so all-equal targets are a uniform
teacher and still count.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from boltir.errors import ConfigError
from boltir.loss.base import RankingLoss, check_positive, masked_mean


def masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """log_softmax over the real entries of each row; padded entries get a (useless) very negative value."""
    # The dtype's minimum rather than -inf: a fully padded row stays finite instead of turning NaN.
    return torch.log_softmax(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), dim=-1)


def masked_logsumexp(logits: Tensor, mask: Tensor) -> Tensor:
    """logsumexp over the real entries of each row (a huge negative number for a row without any)."""
    return torch.logsumexp(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), dim=-1)


def approx_ranks(scores: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """Differentiable rank of each entry, 1 + sum_{j != i} sigmoid((s_j - s_i) / temperature), 1 = best.

    Only real entries count as competitors; tied scores each get half a rank from one another.
    """
    # [q, i, j] = s_j - s_i
    diff = (scores[:, None, :] - scores[:, :, None]) / temperature
    # The self term (sigmoid(0) = 0.5) is summed and taken off rather than masked out: tied entries then sum the same
    # terms in the same order, so their ranks are bitwise equal and a max over them splits its gradient evenly.
    competes = mask[:, :, None] & mask[:, None, :]
    return 1 + (torch.sigmoid(diff).where(competes, 0.0).sum(-1) - 0.5 * mask)


def target_ranks(targets: Tensor, mask: Tensor) -> Tensor:
    """Rank of each entry by its target, 1 = highest; tied entries share the mean of their ranks.

    Mean ranks keep the result independent of the order of tied entries, and equal what
    :func:`approx_ranks` gives tied scores.
    """
    diff = targets[:, None, :] - targets[:, :, None]  # [q, i, j] = t_j - t_i
    not_self = ~torch.eye(targets.shape[-1], dtype=torch.bool, device=targets.device)
    competes = mask[:, :, None] & mask[:, None, :] & not_self
    better = ((diff > 0) & competes).sum(-1)
    tied = ((diff == 0) & competes).sum(-1)
    return (1 + better + 0.5 * tied).to(targets.dtype)


class InfoNCELoss(RankingLoss):
    """Cross entropy of softmax(scores / temperature) towards the positives (entries with target > 0).

    With several positives the loss is -log of their summed probability: the model must rank positives above
    negatives, and is not pushed to separate positives from one another. 0 for a query without positives.
    """

    name: ClassVar[str] = "infonce"

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        logits = scores / self.temperature
        positive = mask & (targets > 0)
        loss = masked_logsumexp(logits, mask) - masked_logsumexp(logits, positive)
        return loss.where(positive.any(-1), 0.0)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class KLDivergenceLoss(RankingLoss):
    """KL(teacher || student) with teacher softmax(targets / T) and student softmax(scores / T), for distillation.

    Not scaled by T**2; multiply the weight yourself if you follow Hinton et al.'s convention.
    """

    name: ClassVar[str] = "kl_divergence"

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        teacher = masked_log_softmax(targets / self.temperature, mask)
        student = masked_log_softmax(scores / self.temperature, mask)
        # where() before multiplying: padded log-probabilities may be -inf, and 0 * -inf is NaN.
        return (teacher.exp() * (teacher - student).where(mask, 0.0)).sum(-1)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class ListNetLoss(RankingLoss):
    """Cross entropy between the top-one distributions softmax(targets) and softmax(scores) (Cao et al. 2007)."""

    name: ClassVar[str] = "listnet"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        teacher = masked_log_softmax(targets, mask).exp()
        student = masked_log_softmax(scores, mask)
        return -(teacher * student.where(mask, 0.0)).sum(-1)


class ApproxLoss(RankingLoss):
    """Base of the losses built on :func:`approx_ranks`; a lower temperature gives sharper (less smooth) ranks."""

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class ApproxNDCGLoss(ApproxLoss):
    """1 - NDCG computed with approximate ranks (Qin et al. 2010), gains 2**target - 1 (negative targets count as 0).

    0 for a query without a positive target.
    """

    name: ClassVar[str] = "approx_ndcg"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        gains = (2.0 ** targets.clamp(min=0) - 1).where(mask, 0.0)
        dcg = (gains / torch.log2(1 + approx_ranks(scores, mask, self.temperature))).sum(-1)
        ideal_gains = gains.sort(dim=-1, descending=True).values
        positions = torch.arange(1, gains.shape[-1] + 1, dtype=gains.dtype, device=gains.device)
        ideal_dcg = (ideal_gains / torch.log2(1 + positions)).sum(-1)
        has_gain = ideal_dcg > 0
        return (1 - dcg / ideal_dcg.where(has_gain, 1.0)).where(has_gain, 0.0)


class ApproxMRRLoss(ApproxLoss):
    """1 - reciprocal approximate rank of the best-placed positive (target > 0); 0 for a query without positives."""

    name: ClassVar[str] = "approx_mrr"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        positive = mask & (targets > 0)
        reciprocal = (1 / approx_ranks(scores, mask, self.temperature)).where(positive, 0.0)
        return (1 - reciprocal.amax(-1)).where(positive.any(-1), 0.0)


RANK_DISCOUNTS = (None, "log2", "reciprocal")


class ApproxRankMSELoss(ApproxLoss):
    """Squared error between approximate ranks and teacher ranks (Schlatt et al. 2024), optionally discounted.

    Teacher ranks come from the targets (highest = rank 1, ties share the mean rank), so targets may be teacher
    scores or an LLM's ranking turned into descending scores. ``discount`` weights each entry's error by its
    teacher rank: None (every rank alike), ``"log2"`` (1 / log2(rank + 1)) or ``"reciprocal"`` (1 / rank), so
    mistakes near the top cost most. The loss is the mean over a query's real entries (Lightning IR's
    ApproxRankMSE averages over the whole batch; equal when every list is full).
    """

    name: ClassVar[str] = "approx_rank_mse"

    def __init__(self, temperature: float = 1.0, discount: str | None = None) -> None:
        super().__init__(temperature)
        if discount not in RANK_DISCOUNTS:
            raise ConfigError(f"discount={discount!r} does not exist; choose one of {list(RANK_DISCOUNTS)}.")
        self.discount = discount

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        teacher = target_ranks(targets, mask)
        error = (approx_ranks(scores, mask, self.temperature) - teacher) ** 2
        if self.discount == "log2":
            error = error / torch.log2(teacher + 1)
        elif self.discount == "reciprocal":
            error = error / teacher
        return masked_mean(error, mask)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, discount={self.discount!r}"


class ApproxDiscountedRankMSELoss(ApproxRankMSELoss):
    """Rank-DistiLLM's loss (Schlatt et al. 2024): :class:`ApproxRankMSELoss` with the log2 discount, 1 /
    log2(teacher_rank + 1)."""

    name: ClassVar[str] = "approx_discounted_rank_mse"

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__(temperature, discount="log2")


class PearsonCorrelationLoss(RankingLoss):
    """1 - the Pearson correlation between a query's scores and its targets (as Lightning IR's PearsonCorrelation).

    Invariant to shifting and to positively scaling either list, so only the scores' linear trend across the
    list counts, not their scale. A query whose real targets are all equal (nothing to correlate with) gives 0.
    """

    name: ClassVar[str] = "pearson"

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        centred_scores = (scores - masked_mean(scores, mask)[:, None]).where(mask, 0.0)
        centred_targets = (targets - masked_mean(targets, mask)[:, None]).where(mask, 0.0)
        covariance = (centred_scores * centred_targets).sum(-1)
        spread = (centred_scores.square().sum(-1) * centred_targets.square().sum(-1)).clamp(min=1e-24).sqrt()
        varies = centred_targets.abs().amax(-1) > 0
        return (1 - covariance / spread).where(varies, 0.0)
