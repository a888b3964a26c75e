"""Multi-vector (ColBERT) scoring: MaxSim over :class:`~boltir.types.TokenVectors`."""

from __future__ import annotations

import torch
from torch import Tensor

from ...types import TokenVectors, cat_batches


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
