"""Multi-vector (ColBERT) scoring: MaxSim over :class:`~boltir.types.TokenVectors`."""

from __future__ import annotations

import torch
from torch import Tensor

from ...types import TokenVectors, cat_batches


def maxsim(queries: TokenVectors, docs: TokenVectors) -> Tensor:
    """``[Q, N]`` late-interaction scores: each query token's best dot product over a document's tokens, summed.

    Masked document tokens never win a max; a document with no counting tokens scores 0.
    """
    sims = torch.einsum("qad,nbd->qnab", queries.vectors, docs.vectors.to(queries.vectors.dtype))
    doc_mask = docs.mask[None, :, None, :]
    best = sims.masked_fill(~doc_mask, float("-inf")).amax(-1)
    best = torch.where(doc_mask.any(-1), best, torch.zeros_like(best))
    return (best * queries.mask[:, None, :].to(best.dtype)).sum(-1)


__all__ = ["TokenVectors", "cat_batches", "maxsim"]
