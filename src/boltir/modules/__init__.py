"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from ..types import EncodeOutput, ScoreOutput, SingleScoreOutput
from .base import BoltirModule
from .bi_encoder import BiEncoderModule, ColBERTModule, SpladeModule
from .bm25 import BM25Module
from .cross_encoder import CrossEncoderModule
from .light_retriever import LightRetrieverModule
from .schedulers import LinearWarmupDecay

__all__ = [
    "BM25Module",
    "BiEncoderModule",
    "BoltirModule",
    "ColBERTModule",
    "CrossEncoderModule",
    "EncodeOutput",
    "LightRetrieverModule",
    "LinearWarmupDecay",
    "ScoreOutput",
    "SingleScoreOutput",
    "SpladeModule",
]
