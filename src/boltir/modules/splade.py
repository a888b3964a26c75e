"""The SPLADE LightningModule: a bi-encoder whose vectors are sparse term weights over the vocabulary."""

from __future__ import annotations

from typing import ClassVar

from ..models import SpladeModel
from .bi_encoder import BiEncoderModule


class SpladeModule(BiEncoderModule):
    """A learned-sparse bi-encoder ready to score, index (Seismic, exact inverted index), search and train.

    Example:
        >>> module = SpladeModule("boltir/splade-tiny")
        >>> module.score("what causes ocean tides", ["The moon's pull causes tides.", "Flour, eggs, sugar."]).scores
    """

    model_class: ClassVar[type[SpladeModel]] = SpladeModel
    model: SpladeModel
    encode_batch_size: ClassVar[int] = 32  # every token carries vocabulary-sized logits
