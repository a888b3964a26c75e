"""Ranking losses and sparsity regularisers, one small class each, and :func:`build_loss` to pick them by name.

Every ranking loss takes ``(scores, targets, mask=None)`` of shape ``[num_queries, list_size]`` and returns the
mean over queries; padded entries (mask False) change neither its value nor its gradient.
"""

from boltir.loss.base import RankingLoss, WeightedLoss
from boltir.loss.in_batch import in_batch_scores
from boltir.loss.listwise import (
    ApproxDiscountedRankMSELoss,
    ApproxMRRLoss,
    ApproxNDCGLoss,
    ApproxRankMSELoss,
    InfoNCELoss,
    KLDivergenceLoss,
    ListNetLoss,
    PearsonCorrelationLoss,
)
from boltir.loss.pairwise import ConstantMarginMSELoss, HingeLoss, MarginMSELoss, RankNetLoss
from boltir.loss.pointwise import BCELoss, MSELoss
from boltir.loss.registry import LOSSES, build_loss
from boltir.loss.regularisers import FLOPSRegulariser, L1Regulariser, Regulariser

__all__ = [
    "LOSSES",
    "ApproxDiscountedRankMSELoss",
    "ApproxMRRLoss",
    "ApproxNDCGLoss",
    "ApproxRankMSELoss",
    "BCELoss",
    "ConstantMarginMSELoss",
    "FLOPSRegulariser",
    "HingeLoss",
    "InfoNCELoss",
    "KLDivergenceLoss",
    "L1Regulariser",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "PearsonCorrelationLoss",
    "RankNetLoss",
    "RankingLoss",
    "Regulariser",
    "WeightedLoss",
    "build_loss",
    "in_batch_scores",
]
