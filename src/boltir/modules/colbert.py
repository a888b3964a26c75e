"""The ColBERT LightningModule: a bi-encoder with one vector per token, scored by MaxSim."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from ..models import ColBERTModel
from ..models.layers import TokenVectors
from .bi_encoder import BiEncoderModule


class ColBERTModule(BiEncoderModule):
    """A multi-vector bi-encoder ready to score, index (PLAID, exact MaxSim), search, re-rank and train.

    Training takes the bi-encoder's options (``loss_functions``, ``in_batch_loss``, ...); MaxSim scores are
    sums over query tokens, so losses usually need no temperature.

    Example:
        >>> module = ColBERTModule(backbone_dir, config=ColBERTConfig(embedding_dim=96))
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores
    """

    model_class: ClassVar[type[ColBERTModel]] = ColBERTModel
    model: ColBERTModel

    def gather(self, tensor: Tensor | TokenVectors) -> Tensor | TokenVectors:
        """Token vectors of every device (DDP), padded to the longest batch; gradients flow through this device's part."""
        trainer = self._trainer
        if not isinstance(tensor, TokenVectors) or trainer is None or trainer.world_size == 1:
            return super().gather(tensor)
        length = int(self.all_gather(torch.tensor(tensor.vectors.shape[1], device=self.device)).max())
        padded = TokenVectors.cat([tensor], length=length)
        masks = self.all_gather(padded.mask)
        return TokenVectors(super().gather(padded.vectors), masks.flatten(0, 1))
