"""The bi-encoder LightningModule: encode queries and documents apart, compare by the config's similarity."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..data.batches import TrainBatch
from ..errors import ConfigError
from ..loss import Regulariser, build_loss, in_batch_scores
from ..models import BiEncoderConfig, BiEncoderModel
from .base import BoltirModule, LossConfig


class BiEncoderModule(BoltirModule):
    """A bi-encoder ready to score, index, search and train.

    Example:
        >>> module = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2")
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores

    Training adds, to the base module's options:
        in_batch_loss: a loss (as ``loss_functions``) over every query against every document of the batch,
            gathered across devices under DDP; the target is each query's own positive (its list's first
            document), e.g. ``{name: infonce, temperature: 0.05}``. None turns in-batch negatives off.
        query_regulariser / doc_regulariser: a sparsity penalty on the query / document vectors (SPLADE),
            weighted by ``weight_at(global_step)``.
    """

    model_class: ClassVar[type[BiEncoderModel]] = BiEncoderModel
    model: BiEncoderModel

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        config: BiEncoderConfig | dict | None = None,
        model: BiEncoderModel | None = None,
        loss_functions: LossConfig | None = "infonce",
        in_batch_loss: LossConfig | None = None,
        query_regulariser: Regulariser | None = None,
        doc_regulariser: Regulariser | None = None,
        val_measures: Sequence[str] = ("nDCG@10",),
        gradient_checkpointing: bool = False,
        config_overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model_name_or_path, config, model, loss_functions, val_measures, gradient_checkpointing, config_overrides)
        self.in_batch_loss = build_loss(in_batch_loss) if in_batch_loss is not None else None
        if self.loss is None and self.in_batch_loss is None:
            raise ConfigError("BiEncoderModule needs loss_functions or in_batch_loss (or both) to train.")
        self.query_regulariser = query_regulariser
        self.doc_regulariser = doc_regulariser

    def training_losses(self, batch: TrainBatch) -> dict[str, Tensor]:
        """List loss, in-batch loss and regularisers, from one encoding of the batch's queries and documents."""
        num_queries, list_size = batch.targets.shape
        queries = self.embed_queries(batch.queries)
        docs = self.embed_docs([d for ds in batch.docs for d in ds])
        losses: dict[str, Tensor] = {}
        if self.loss is not None:
            scores = torch.stack(
                [self.model.score(queries[i : i + 1], docs[i * list_size : (i + 1) * list_size])[0] for i in range(num_queries)]
            )
            losses["ranking"] = self.ranking_loss(scores, batch.targets)
        if self.in_batch_loss is not None:
            scores, targets = in_batch_scores(self.gather(queries), self.gather(docs), list_size, self.model.score)
            # Each device back-propagates through its own vectors only and DDP averages the gradients over
            # devices: scaling by the world size gives the gradient of the loss over the gathered batch.
            world_size = self.trainer.world_size if self._trainer is not None else 1
            losses["in_batch"] = self.in_batch_loss(scores.float(), targets.float()) * world_size
        for name, regulariser, vectors in (
            ("query_regulariser", self.query_regulariser, queries),
            ("doc_regulariser", self.doc_regulariser, docs),
        ):
            if regulariser is not None:
                losses[name] = regulariser.weight_at(self.global_step) * regulariser(vectors.float())
        return losses

    def _encode(self, texts: list[str], side: str, batch_size: int) -> Tensor:
        """Encode texts in length-sorted batches (little padding), returned in input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        tokenize = self.model.tokenize_queries if side == "query" else self.model.tokenize_docs
        encode = self.model.encode_queries if side == "query" else self.model.encode_docs
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            chunks.append(encode(self._to_device(tokenize(batch))))
        vectors = torch.cat(chunks)
        result = torch.empty_like(vectors)
        result[torch.tensor(order, device=vectors.device)] = vectors
        return result

    def embed_queries(self, texts: list[str], batch_size: int = 256) -> Tensor:
        return self._encode(texts, "query", batch_size)

    def embed_docs(self, texts: list[str], batch_size: int = 256) -> Tensor:
        return self._encode(texts, "doc", batch_size)

    @torch.inference_mode()
    def encode_queries(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """``[len(texts), dim]`` query vectors (no gradients)."""
        return self.embed_queries(texts, batch_size)

    @torch.inference_mode()
    def encode_docs(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """``[len(texts), dim]`` document vectors (no gradients)."""
        return self.embed_docs(texts, batch_size)

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        query_vectors = self.embed_queries(queries)
        flat = [d for ds in docs for d in ds]
        doc_vectors = self.embed_docs(flat)
        scores, start = [], 0
        for i, ds in enumerate(docs):
            scores.append(self.model.score(query_vectors[i : i + 1], doc_vectors[start : start + len(ds)])[0])
            start += len(ds)
        return scores
