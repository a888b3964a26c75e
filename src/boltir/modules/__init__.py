"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from .base import BoltirModule, EncodeOutput, ScoreOutput, SingleScoreOutput
from .bi_encoder import BiEncoderModule
from .bm25 import BM25Module
from .colbert import ColBERTModule
from .cross_encoder import CrossEncoderModule
from .light_retriever import LightRetrieverModule
from .schedulers import LinearWarmupDecay
from .splade import SpladeModule

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
