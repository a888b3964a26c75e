"""The LightningModule base: a boltir model plus what Lightning needs to index, search, re-rank and train it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch import Tensor

from ..data.batches import DocBatch, Encoding, QueryBatch, RankBatch
from ..data.datamodule import DataModule
from ..errors import ConfigError
from ..models import BoltirConfig, BoltirModel


@dataclass
class EncodeOutput:
    """Vectors of a batch of documents or queries, with their ids."""

    ids: list[str]
    embeddings: Tensor
    kind: str  # "query" or "doc"


@dataclass
class ScoreOutput:
    """Scores of documents for queries: ``scores[i]`` holds one float per document of query ``i``."""

    query_ids: list[str]
    doc_ids: list[list[str]]
    scores: list[Tensor]


class BoltirModule(pl.LightningModule):
    """Holds a model and its tokenizer; batching, padding, truncation and device placement happen here."""

    model_class: ClassVar[type[BoltirModel]] = BoltirModel

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        config: BoltirConfig | dict | None = None,
        model: BoltirModel | None = None,
    ) -> None:
        super().__init__()
        if model is None:
            if model_name_or_path is None:
                raise ConfigError("pass model_name_or_path (a model directory or hub name) or a model.")
            model = self.model_class.from_pretrained(model_name_or_path, config=config)
        self.model = model

    @property
    def config(self) -> BoltirConfig:
        return self.model.config

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Save model, tokenizer and boltir config as one HF directory (atomically)."""
        self.model.save_pretrained(directory)

    def _to_device(self, encoding: Encoding) -> Encoding:
        """Move a tokenised batch to the model's device; through page-locked memory on a GPU, so the copy does
        not wait for the GPU's queued work and the CPU can prepare the next batch meanwhile."""
        device = self.device
        if device.type != "cuda":
            return {k: v.to(device) for k, v in encoding.items()}
        return {k: (v if v.is_cuda else v.pin_memory()).to(device, non_blocking=True) for k, v in encoding.items()}

    def batch_transform(self) -> Callable[[Any], Any] | None:
        """What the DataLoader's workers apply to each batch (tokenisation); None keeps batches as text."""
        return None

    def setup(self, stage: str) -> None:
        """Hand :meth:`batch_transform` to boltir's DataModule, so batches arrive tokenised."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if isinstance(datamodule, DataModule):
            datamodule.batch_transform = self.batch_transform()

    # -- Lightning's predict loop drives index / search / re-rank (see boltir.callbacks) -----------
    def predict_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> EncodeOutput | ScoreOutput:
        if isinstance(batch, DocBatch):
            return EncodeOutput(batch.doc_ids, self.embed_docs(batch.texts, encoding=batch.encoding), "doc")
        if isinstance(batch, QueryBatch):
            return EncodeOutput(batch.query_ids, self.embed_queries(batch.texts, encoding=batch.encoding), "query")
        if isinstance(batch, RankBatch):
            return ScoreOutput(batch.query_ids, batch.doc_ids, self.rank_scores(batch.queries, batch.docs))
        raise TypeError(f"{type(self).__name__} cannot predict on a {type(batch).__name__}")

    def embed_docs(self, texts: list[str], encoding: Encoding | None = None) -> Tensor:
        """Document vectors; ``encoding`` holds the texts' tokens when the DataLoader's workers made them."""
        raise ConfigError(f"{type(self).__name__} does not encode documents on their own (it is not a bi-encoder).")

    def embed_queries(self, texts: list[str], encoding: Encoding | None = None) -> Tensor:
        raise ConfigError(f"{type(self).__name__} does not encode queries on their own (it is not a bi-encoder).")

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        """One score per candidate document of each query; families implement it."""
        raise NotImplementedError

    # -- convenience for users outside a Trainer ---------------------------------------------------
    @torch.inference_mode()
    def score(self, query: str | list[str], docs: list[str] | list[list[str]]) -> ScoreOutput:
        """Score documents for one query (``docs`` a list of texts) or for several (a list of lists)."""
        queries = [query] if isinstance(query, str) else list(query)
        doc_lists = [docs] if isinstance(query, str) else docs
        if len(queries) != len(doc_lists):
            raise ConfigError(f"got {len(queries)} queries but {len(doc_lists)} document lists.")
        for q, d in zip(queries, doc_lists):
            if not q.strip():
                raise ConfigError("a query is empty; pass non-empty query text.")
            if not d:
                raise ConfigError(f"the candidate list of query '{q[:40]}' is empty; pass at least one document.")
        was_training = self.training
        self.eval()
        try:
            scores = self.rank_scores(queries, doc_lists)
        finally:
            self.train(was_training)
        ids = [str(i) for i in range(len(queries))]
        doc_ids = [[str(j) for j in range(len(d))] for d in doc_lists]
        return SingleScoreOutput(scores[0]) if isinstance(query, str) else ScoreOutput(ids, doc_ids, scores)


@dataclass
class SingleScoreOutput:
    """Scores of one query's documents, in the order they were passed."""

    scores: Tensor

    def ranking(self) -> list[int]:
        """Document positions, best first."""
        return torch.argsort(self.scores, descending=True, stable=True).tolist()

