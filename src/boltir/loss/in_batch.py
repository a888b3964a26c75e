"""In-batch negatives for bi-encoders: every query is scored against every document of the batch.

Documents arrive grouped per query, ``docs_per_query`` rows each, the first of each group the query's positive.
A query's negatives are the rest of its own group plus every other query's documents (their positives included:
duplicates across queries are not detected). The scores and targets feed :class:`InfoNCELoss`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from boltir.errors import ConfigError


def in_batch_scores(
    query_embeddings: Tensor | Any,
    doc_embeddings: Tensor | Any,
    docs_per_query: int,
    similarity: Callable[[Any, Any], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Scores ``[Q, Q * N]`` of ``[Q, D]`` queries against ``[Q * N, D]`` documents, and targets with a 1 at the
    positive (column ``q * N``) of each query. ``similarity(queries, docs)`` must return ``[Q, Q * N]``; the
    default is the dot product (normalise embeddings first for cosine). With a ``similarity``, embeddings may be
    any batch type it takes (e.g. multi-vector ``TokenVectors``): only their lengths are checked."""
    if docs_per_query < 1:
        raise ConfigError(f"docs_per_query must be >= 1, got {docs_per_query}")
    if isinstance(query_embeddings, Tensor) and isinstance(doc_embeddings, Tensor):
        if query_embeddings.dim() != 2 or doc_embeddings.dim() != 2:
            raise ConfigError(
                "query and document embeddings must be 2-D, got shapes "
                f"{tuple(query_embeddings.shape)} and {tuple(doc_embeddings.shape)}"
            )
        expected = (query_embeddings.shape[0] * docs_per_query, query_embeddings.shape[1])
        if tuple(doc_embeddings.shape) != expected:
            raise ConfigError(
                f"doc_embeddings must be [num_queries * docs_per_query, dim], expected {expected}, "
                f"got {tuple(doc_embeddings.shape)}"
            )
    elif similarity is None:
        raise ConfigError("embeddings that are not plain tensors (token or segment vectors) need a similarity function")
    elif len(doc_embeddings) != len(query_embeddings) * docs_per_query:
        raise ConfigError(
            f"expected {len(query_embeddings)} x {docs_per_query} document embeddings, got {len(doc_embeddings)}"
        )
    num_queries = len(query_embeddings)
    if similarity is None:
        scores = query_embeddings @ doc_embeddings.T
    else:
        scores = similarity(query_embeddings, doc_embeddings)
    targets = torch.zeros(num_queries, num_queries * docs_per_query, dtype=scores.dtype, device=scores.device)
    rows = torch.arange(num_queries, device=scores.device)
    targets[rows, rows * docs_per_query] = 1.0
    return scores, targets


__all__ = ["in_batch_scores"]
