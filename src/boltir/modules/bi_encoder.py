"""The bi-encoder LightningModule: encode queries and documents apart, compare by the config's similarity."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..data.batches import DocBatch, Encoding, QueryBatch
from ..models import BiEncoderModel
from .base import BoltirModule


class TokenizeBatch:
    """Tokenises query and document batches with the model's own tokenize methods (in DataLoader workers)."""

    def __init__(self, model: BiEncoderModel) -> None:
        self.tokenize_queries, self.tokenize_docs = model.tokenize_queries, model.tokenize_docs

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, DocBatch) and batch.encoding is None:
            batch.encoding = self.tokenize_docs(batch.texts)
        elif isinstance(batch, QueryBatch) and batch.encoding is None:
            batch.encoding = self.tokenize_queries(batch.texts)
        return batch


class BiEncoderModule(BoltirModule):
    """A bi-encoder ready to score, index, search and train.

    Example:
        >>> module = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2")
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores
    """

    model_class: ClassVar[type[BiEncoderModel]] = BiEncoderModel
    model: BiEncoderModel

    def batch_transform(self) -> Callable[[Any], Any]:
        return TokenizeBatch(self.model)

    def _encode(self, texts: list[str], side: str, batch_size: int, encoding: Encoding | None = None) -> Tensor:
        """Encode texts in length-sorted batches (little padding), returned in input order.

        Vectors stay on the model's device until the end, and a helper thread tokenises the next batch (into
        page-locked memory on a GPU) while this one is encoded: the host and the device work side by side.
        """
        encode = self.model.encode_queries if side == "query" else self.model.encode_docs
        if encoding is not None:  # a batch the DataLoader's workers tokenised (and length-sorted)
            return encode(self._to_device(encoding))
        tokenize = self.model.tokenize_queries if side == "query" else self.model.tokenize_docs
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        batches = [[texts[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
        pin = self.device.type == "cuda"

        def prepare(batch: list[str]) -> Encoding:
            encoding = tokenize(batch)
            return {k: v.pin_memory() for k, v in encoding.items()} if pin else encoding

        chunks = []
        # a helper thread tokenises the next batch while this one runs (the Rust tokenizer releases the GIL)
        with ThreadPoolExecutor(max_workers=1) as helper:
            upcoming = helper.submit(prepare, batches[0]) if batches else None
            for index in range(len(batches)):
                encoding = upcoming.result()  # type: ignore[union-attr]
                if index + 1 < len(batches):
                    upcoming = helper.submit(prepare, batches[index + 1])
                chunks.append(encode(self._to_device(encoding)))
        if not chunks:
            return torch.empty(0, self.model.embedding_dim, device=self.device)
        vectors = torch.cat(chunks)
        result = torch.empty_like(vectors)
        result[torch.tensor(order, device=vectors.device)] = vectors
        return result

    def embed_queries(self, texts: list[str], encoding: Encoding | None = None, batch_size: int = 256) -> Tensor:
        return self._encode(texts, "query", batch_size, encoding)

    def embed_docs(self, texts: list[str], encoding: Encoding | None = None, batch_size: int = 256) -> Tensor:
        return self._encode(texts, "doc", batch_size, encoding)

    @torch.inference_mode()
    def encode_queries(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """``[len(texts), dim]`` query vectors (no gradients)."""
        return self.embed_queries(texts, batch_size=batch_size)

    @torch.inference_mode()
    def encode_docs(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """``[len(texts), dim]`` document vectors (no gradients)."""
        return self.embed_docs(texts, batch_size=batch_size)

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        query_vectors = self.embed_queries(queries)
        flat = [d for ds in docs for d in ds]
        doc_vectors = self.embed_docs(flat)
        scores, start = [], 0
        for i, ds in enumerate(docs):
            scores.append(self.model.score(query_vectors[i : i + 1], doc_vectors[start : start + len(ds)])[0])
            start += len(ds)
        return scores
