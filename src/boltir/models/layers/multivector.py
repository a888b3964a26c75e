"""Multi-vector (ColBERT) pieces: a batch of per-token vectors with its mask, and MaxSim scoring."""

from __future__ import annotations

from dataclasses import dataclass

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

    def __getitem__(self, index: int | slice | Tensor | list[int]) -> TokenVectors:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return TokenVectors(self.vectors[index], self.mask[index])

    @property
    def dim(self) -> int:
        return self.vectors.shape[-1]

    def to(self, device: torch.device | str) -> TokenVectors:
        return TokenVectors(self.vectors.to(device), self.mask.to(device))

    def detach(self) -> TokenVectors:
        return TokenVectors(self.vectors.detach(), self.mask)

    def unpadded(self) -> list[Tensor]:
        """One ``[n_i, dim]`` matrix per text, holding only the tokens that count."""
        return [v[m] for v, m in zip(self.vectors, self.mask)]

    @staticmethod
    def cat(parts: list[TokenVectors], length: int | None = None) -> TokenVectors:
        """Concatenate batches of different token lengths, padded to the longest (or to ``length``)."""
        length = max([p.vectors.shape[1] for p in parts] + [length or 0])
        vectors = torch.cat([F.pad(p.vectors, (0, 0, 0, length - p.vectors.shape[1])) for p in parts])
        mask = torch.cat([F.pad(p.mask, (0, length - p.mask.shape[1])) for p in parts])
        return TokenVectors(vectors, mask)


def cat_batches(parts: list) -> Tensor | TokenVectors:
    """Concatenate encoded batches, whatever the representation (dense / sparse tensors or token vectors)."""
    return TokenVectors.cat(parts) if isinstance(parts[0], TokenVectors) else torch.cat(parts)


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
