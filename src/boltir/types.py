"""The types several layers share: vectors of encoded texts and the outputs of a model's predict step.

Models make them, index engines store and search them, modules and callbacks pass them on; they live here, below
all of those, so that none has to import another to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class TokenVectors:
    """Per-token vectors of a batch of texts: ``vectors [batch, tokens, dim]`` padded, ``mask [batch, tokens]``
    True where a token counts (real, not punctuation for documents, [MASK] augmentation for queries)."""

    vectors: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        if self.vectors.dim() != 3 or self.mask.shape != self.vectors.shape[:2]:
            raise ValueError(f"token vectors {tuple(self.vectors.shape)} and mask {tuple(self.mask.shape)} do not match")
        self.mask = self.mask.bool()

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def __getitem__(self, index: int | slice | Tensor | list[int]) -> Self:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return type(self)(self.vectors[index], self.mask[index])

    @property
    def dim(self) -> int:
        return self.vectors.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.vectors.device

    def to(self, *args: Any, **kwargs: Any) -> Self:
        vectors = self.vectors.to(*args, **kwargs)
        return type(self)(vectors, self.mask.to(vectors.device))

    def detach(self) -> Self:
        return type(self)(self.vectors.detach(), self.mask)

    def unpadded(self) -> list[Tensor]:
        """One ``[n_i, dim]`` matrix per text, holding only the vectors that count."""
        return [v[m] for v, m in zip(self.vectors, self.mask)]

    def flat(self) -> tuple[Tensor, Tensor]:
        """The counting vectors ``[total, dim]`` and the row (text) each belongs to ``[total]``."""
        rows, _ = self.mask.nonzero(as_tuple=True)
        return self.vectors[self.mask], rows

    @classmethod
    def cat(cls, parts: Sequence[TokenVectors], length: int | None = None) -> Self:
        """Concatenate batches of different lengths, padded to the longest (or to ``length``)."""
        length = max([p.vectors.shape[1] for p in parts] + [length or 0])
        vectors = torch.cat([F.pad(p.vectors, (0, 0, 0, length - p.vectors.shape[1])) for p in parts])
        mask = torch.cat([F.pad(p.mask, (0, length - p.mask.shape[1])) for p in parts])
        return cls(vectors, mask)


class SegmentedVectors(TokenVectors):
    """Documents as segment vectors: ``vectors [docs, segments, dim]`` and ``mask [docs, segments]`` (True = real).

    The same padded layout as token vectors, one row per segment; padding segments hold zeros and are False in
    ``mask``, and scoring never lets them win.
    """


def cat_batches(parts: list) -> Tensor | TokenVectors:
    """Concatenate encoded batches, whatever the representation (dense / sparse tensors or token vectors)."""
    return type(parts[0]).cat(parts) if isinstance(parts[0], TokenVectors) else torch.cat(parts)


@dataclass
class EncodeOutput:
    """Vectors of a batch of documents or queries, with their ids.

    ``embeddings`` is ``[batch, dim]`` for dense models, ``[batch, vocab]`` mostly-zero term weights for sparse
    ones, :class:`TokenVectors` (padded ``[batch, tokens, dim]`` + mask) for multi-vector ones, and the texts
    themselves for lexical engines such as BM25; the model's ``representation`` says which, and index engines
    check it.
    """

    ids: list[str]
    embeddings: Tensor | TokenVectors | list[str]
    kind: str  # "query" or "doc"


@dataclass
class ScoreOutput:
    """Scores of documents for queries: ``scores[i]`` holds one float per document of query ``i``."""

    query_ids: list[str]
    doc_ids: list[list[str]]
    scores: list[Tensor]


@dataclass
class SingleScoreOutput:
    """Scores of one query's documents, in the order they were passed."""

    scores: Tensor

    def ranking(self) -> list[int]:
        """Document positions, best first."""
        return torch.argsort(self.scores, descending=True, stable=True).tolist()


__all__ = ["EncodeOutput", "ScoreOutput", "SegmentedVectors", "SingleScoreOutput", "TokenVectors", "cat_batches"]
