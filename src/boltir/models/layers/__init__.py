"""Small modules that model families compose: pooling, similarity, projection."""

from .pooling import POOLING_STRATEGIES, Pooling
from .similarity import SIMILARITIES, check_similarity, pairwise_similarity
from .tokenize import tokenize_texts

__all__ = ["POOLING_STRATEGIES", "SIMILARITIES", "Pooling", "check_similarity", "pairwise_similarity", "tokenize_texts"]
