"""Small dataclasses for samples and batches, so steps and callbacks know what they hold."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError

Encoding = dict[str, Tensor]


@dataclass
class Doc:
    doc_id: str
    text: str


@dataclass
class Query:
    query_id: str
    text: str


@dataclass
class RankSample:
    """One query with candidate documents (from a first-stage run) to re-rank."""

    query_id: str
    query: str
    doc_ids: list[str]
    docs: list[str]
    scores: list[float] = field(default_factory=list)


def pin_tensor(tensor: Tensor) -> Tensor:
    """A page-locked copy of a host tensor, so its copy to the GPU can overlap the GPU's work; a tensor already on
    a device (Lightning moves the DataLoader's batches there) stays as it is."""
    return tensor.pin_memory() if tensor.device.type == "cpu" else tensor


def pin_encoding(encoding: Any) -> Any:
    """Page-locked copies of a tokenised batch (see :func:`pin_tensor`): a dict of tensors, or an object with its
    own ``pin_memory`` (sequences packed by the DataLoader's workers)."""
    if encoding is None or not isinstance(encoding, dict):
        return None if encoding is None else encoding.pin_memory()
    return {k: pin_tensor(v) for k, v in encoding.items()}


@dataclass
class TokenChunks:
    """Texts tokenised in chunks of similar length, so each chunk pads little: the chunks, laid end to end, hold
    the texts at positions ``order`` of the original list."""

    order: list[int]
    chunks: list[Encoding]

    def pin_memory(self) -> TokenChunks:
        return replace(self, chunks=[pin_encoding(chunk) for chunk in self.chunks])


@dataclass
class TrainSample:
    """One training list: a query, ``N`` documents (the first a positive) and a target per document.

    Targets are relevance labels (from qrels or a tuple file) or a teacher's scores (for distillation).
    """

    query_id: str
    query: str
    doc_ids: list[str]
    docs: list[str]
    targets: list[float]


@dataclass
class DocBatch:
    """Documents to encode; ``encoding`` holds their tokens when the DataLoader's workers tokenised them (padded,
    or packed end to end where the module runs packed)."""

    doc_ids: list[str]
    texts: list[str]
    encoding: Any = None

    def pin_memory(self) -> DocBatch:
        return replace(self, encoding=pin_encoding(self.encoding))


@dataclass
class QueryBatch:
    """Queries to encode; ``encoding`` as in :class:`DocBatch`."""

    query_ids: list[str]
    texts: list[str]
    encoding: Any = None

    def pin_memory(self) -> QueryBatch:
        return replace(self, encoding=pin_encoding(self.encoding))


@dataclass
class RankBatch:
    query_ids: list[str]
    queries: list[str]
    doc_ids: list[list[str]]
    docs: list[list[str]]


@dataclass
class TrainBatch:
    """Training lists of equal length ``N``; ``targets`` is ``[num_queries, N]``, column 0 holding the positives.

    ``query_tokens`` / ``doc_tokens`` (the documents of all lists, in order) hold the texts' tokens when the
    DataLoader's workers tokenised them.
    """

    query_ids: list[str]
    queries: list[str]
    doc_ids: list[list[str]]
    docs: list[list[str]]
    targets: Tensor
    query_tokens: TokenChunks | None = None
    doc_tokens: TokenChunks | None = None

    def pin_memory(self) -> TrainBatch:
        return replace(
            self,
            targets=self.targets.pin_memory(),
            query_tokens=self.query_tokens.pin_memory() if self.query_tokens is not None else None,
            doc_tokens=self.doc_tokens.pin_memory() if self.doc_tokens is not None else None,
        )


def collate(samples: list) -> DocBatch | QueryBatch | RankBatch | TrainBatch:
    """Turn a list of samples of one kind into its batch type."""
    first = samples[0]
    if isinstance(first, Doc):
        return DocBatch([s.doc_id for s in samples], [s.text for s in samples])
    if isinstance(first, Query):
        return QueryBatch([s.query_id for s in samples], [s.text for s in samples])
    if isinstance(first, RankSample):
        return RankBatch(
            [s.query_id for s in samples], [s.query for s in samples], [s.doc_ids for s in samples], [s.docs for s in samples]
        )
    if isinstance(first, TrainSample):
        sizes = {len(s.docs) for s in samples}
        if len(sizes) != 1:
            raise ConfigError(f"training lists in one batch must have one length, got lengths {sorted(sizes)}; set list_size.")
        return TrainBatch(
            [s.query_id for s in samples],
            [s.query for s in samples],
            [s.doc_ids for s in samples],
            [s.docs for s in samples],
            torch.tensor([s.targets for s in samples], dtype=torch.float32),
        )
    raise TypeError(f"cannot batch samples of type {type(first).__name__}")
