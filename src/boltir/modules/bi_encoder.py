"""The bi-encoder LightningModule: encode queries and documents apart, compare by the config's similarity."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from ..models import BiEncoderModel
from ..models.layers.segments import SegmentedVectors, cat_vectors
from .base import BoltirModule


class BiEncoderModule(BoltirModule):
    """A bi-encoder ready to score, index, search and train.

    Example:
        >>> module = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2")
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores
    """

    model_class: ClassVar[type[BiEncoderModel]] = BiEncoderModel
    model: BiEncoderModel

    def _encode(self, texts: list[str], side: str, batch_size: int) -> Tensor | SegmentedVectors:
        """Encode texts in length-sorted batches (little padding), returned in input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        tokenize = self.model.tokenize_queries if side == "query" else self.model.tokenize_docs
        encode = self.model.encode_queries if side == "query" else self.model.encode_docs
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            chunks.append(encode(self._to_device(tokenize(batch))))
        vectors = cat_vectors(chunks)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return vectors[inverse.to(vectors.device)]

    def embed_queries(self, texts: list[str], batch_size: int = 256) -> Tensor:
        return self._encode(texts, "query", batch_size)  # type: ignore[return-value]

    def embed_docs(self, texts: list[str], batch_size: int = 256) -> Tensor | SegmentedVectors:
        """Document vectors; one per segment (:class:`SegmentedVectors`) when the model splits long documents."""
        return self._encode(texts, "doc", batch_size)

    @torch.inference_mode()
    def encode_queries(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """``[len(texts), dim]`` query vectors (no gradients)."""
        return self.embed_queries(texts, batch_size)

    @torch.inference_mode()
    def encode_docs(self, texts: list[str], batch_size: int = 256) -> Tensor | SegmentedVectors:
        """``[len(texts), dim]`` document vectors (no gradients); segment vectors for segmented models."""
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
