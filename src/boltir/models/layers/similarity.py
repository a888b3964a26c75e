"""Similarity functions between query and document vectors, named in a config."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import ConfigError

# l2 is the negative *squared* distance (what L2 indexes rank by, and smooth at 0); euclidean is the negative
# distance itself, as Lightning IR's "l2" computes it: the same ranking, other scores (and losses over them)
SIMILARITIES = ("dot", "cosine", "l2", "euclidean")


def check_similarity(name: str) -> str:
    if name not in SIMILARITIES:
        raise ConfigError(f"similarity '{name}' does not exist; choose one of {list(SIMILARITIES)}.")
    return name


def pairwise_similarity(name: str, queries: Tensor, docs: Tensor) -> Tensor:
    """Score every query ``[Q, D]`` against every document ``[N, D]``: ``[Q, N]``, higher is better."""
    if name == "dot":
        return queries @ docs.T
    if name == "cosine":
        return F.normalize(queries, dim=-1) @ F.normalize(docs, dim=-1).T
    if name == "l2":
        return -torch.cdist(queries, docs).pow(2)
    if name == "euclidean":
        return -torch.cdist(queries, docs)
    raise ConfigError(f"similarity '{name}' does not exist; choose one of {list(SIMILARITIES)}.")
