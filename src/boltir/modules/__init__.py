"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from .base import BoltirModule, EncodeOutput, ScoreOutput, SingleScoreOutput
from .bi_encoder import BiEncoderModule
from .schedulers import LinearWarmupDecay

__all__ = ["BiEncoderModule", "BoltirModule", "EncodeOutput", "LinearWarmupDecay", "ScoreOutput", "SingleScoreOutput"]
