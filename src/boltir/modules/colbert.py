"""The ColBERT LightningModule: a bi-encoder with one vector per token, scored by MaxSim."""

from __future__ import annotations

from typing import ClassVar

from ..models import ColBERTModel
from .bi_encoder import BiEncoderModule


class ColBERTModule(BiEncoderModule):
    """A multi-vector bi-encoder ready to score, index (PLAID, exact MaxSim), search, re-rank and train.

    Example:
        >>> module = ColBERTModule(backbone_dir, config=ColBERTConfig(embedding_dim=96))
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores
    """

    model_class: ClassVar[type[ColBERTModel]] = ColBERTModel
    model: ColBERTModel
