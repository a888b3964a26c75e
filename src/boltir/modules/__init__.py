"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from .base import BoltirModule, EncodeOutput, ScoreOutput, SingleScoreOutput
from .bi_encoder import BiEncoderModule
from .bm25 import BM25Module
from .cross_encoder import CrossEncoderModule
from .schedulers import LinearWarmupDecay

__all__ = [
    "BM25Module",
    "BiEncoderModule",
    "BoltirModule",
    "CrossEncoderModule",
    "EncodeOutput",
    "LinearWarmupDecay",
    "ScoreOutput",
    "SingleScoreOutput",
]
