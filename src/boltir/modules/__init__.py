"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from .base import BoltirModule, EncodeOutput, ScoreOutput, SingleScoreOutput
from .bi_encoder import BiEncoderModule
from .colbert import ColBERTModule
from .schedulers import LinearWarmupDecay
from .splade import SpladeModule

__all__ = [
    "BiEncoderModule",
    "BoltirModule",
    "ColBERTModule",
    "EncodeOutput",
    "LinearWarmupDecay",
    "ScoreOutput",
    "SingleScoreOutput",
    "SpladeModule",
]
