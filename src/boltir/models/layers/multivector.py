"""Multi-vector (ColBERT) pieces: a batch of per-token vectors with its mask, and MaxSim scoring."""

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


def cat_batches(parts: list) -> Tensor | TokenVectors:
    """Concatenate encoded batches, whatever the representation (dense / sparse tensors or token vectors)."""
    return type(parts[0]).cat(parts) if isinstance(parts[0], TokenVectors) else torch.cat(parts)


MULTI_VECTOR_AGGREGATIONS = ("sum", "mean", "max")


def maxsim(queries: TokenVectors, docs: TokenVectors, query_aggregation: str = "sum", doc_aggregation: str = "max") -> Tensor:
    """``[Q, N]`` late-interaction scores: each query token's best dot product over a document's tokens, summed
    (ColBERT's MaxSim); ``doc_aggregation`` / ``query_aggregation`` choose sum, mean or max instead.

    Masked document tokens never win a max nor add to a sum; a document with no counting tokens scores 0.
    """
    sims = torch.einsum("qad,nbd->qnab", queries.vectors, docs.vectors.to(queries.vectors.dtype))
    doc_mask = docs.mask[None, :, None, :]
    per_token = _aggregate(sims, doc_mask, doc_aggregation)  # [Q, N, query tokens]
    per_token = torch.where(doc_mask.any(-1), per_token, torch.zeros_like(per_token))
    return _aggregate(per_token, queries.mask[:, None, :], query_aggregation)


def _aggregate(scores: Tensor, mask: Tensor, how: str) -> Tensor:
    """``scores`` reduced over the last dimension, counting only where ``mask`` is True."""
    if how == "max":
        return scores.masked_fill(~mask, float("-inf")).amax(-1)
    total = (scores * mask.to(scores.dtype)).sum(-1)
    return total if how == "sum" else total / mask.sum(-1).clamp(min=1).to(scores.dtype)


__all__ = ["MULTI_VECTOR_AGGREGATIONS", "TokenVectors", "cat_batches", "maxsim"]
