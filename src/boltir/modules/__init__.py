"""LightningModules: a model family's model plus what Lightning needs to run and train it."""

from .base import BoltirModule, EncodeOutput, ScoreOutput, SingleScoreOutput
from .bi_encoder import BiEncoderModule
from .light_retriever import LightRetrieverModule

__all__ = ["BiEncoderModule", "BoltirModule", "EncodeOutput", "LightRetrieverModule", "ScoreOutput", "SingleScoreOutput"]
