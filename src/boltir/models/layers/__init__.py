"""Small modules that model families compose: pooling, similarity, projection, sparsifiers, late interaction,
long-document segments."""

from .multivector import TokenVectors, cat_batches, maxsim
from .pooling import POOLING_STRATEGIES, Pooling
from .segments import AGGREGATIONS, SegmentConfig, SegmentedVectors, Segments
from .similarity import SIMILARITIES, check_similarity, pairwise_similarity
from .sparse import SPARSE_POOLING, LogSaturation, TopKPruning, VocabularyPooling, restrict_to_input_tokens
from .tokenize import pad_right_for_causal_attention, tokenize_texts

__all__ = [
    "POOLING_STRATEGIES",
    "SIMILARITIES",
    "SPARSE_POOLING",
    "LogSaturation",
    "Pooling",
    "TokenVectors",
    "TopKPruning",
    "VocabularyPooling",
    "cat_batches",
    "check_similarity",
    "maxsim",
    "pairwise_similarity",
    "restrict_to_input_tokens",
    "AGGREGATIONS",
    "SegmentConfig",
    "SegmentedVectors",
    "Segments",
    "pad_right_for_causal_attention",
    "tokenize_texts",
]
