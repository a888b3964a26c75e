"""Small modules that model families compose: pooling, similarity, projection, long-document segments."""

from .pooling import POOLING_STRATEGIES, Pooling
from .segments import AGGREGATIONS, SegmentConfig, SegmentedVectors, Segments
from .similarity import SIMILARITIES, check_similarity, pairwise_similarity

__all__ = [
    "AGGREGATIONS",
    "POOLING_STRATEGIES",
    "SIMILARITIES",
    "Pooling",
    "SegmentConfig",
    "SegmentedVectors",
    "Segments",
    "check_similarity",
    "pairwise_similarity",
]
