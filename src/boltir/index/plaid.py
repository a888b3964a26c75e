"""Per-token vectors in PLAID (Santhanam et al., 2022) through fast-plaid (PyPI ``fast-plaid``, extra ``plaid``).

fast-plaid builds its centroids from the whole collection, so token vectors stream to a temporary file while
the corpus is encoded; PLAID's compressed index (centroids + ``nbits`` residuals) is built from it at the end
and the raw tokens are dropped. fast-plaid pins its own torch version: install it where that torch runs
(the GPU machines); the exact path (:mod:`boltir.index.multivector_exact`) runs everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import ConfigError, require
from ..types import TokenVectors
from .base import IndexConfig, Indexer, Searcher
from .vectors import LENGTHS_FILE, TOKENS_FILE, TokenWriter, pad_results, read_tokens, token_matrices, top_k

PLAID_DIR = "plaid"


def _fast_plaid():
    return require("fast_plaid.search", "fast-plaid", "the PLAID index", extra="plaid")


class PlaidIndexer(Indexer):
    representation: ClassVar[str] = "multi-vector"
    config: PlaidIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: PlaidIndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        _fast_plaid()  # fail before encoding anything if fast-plaid is missing
        self.dim = int(self.fingerprint["dim"])
        self.writer = TokenWriter(self.tmp, self.dim, "float16")

    def _add(self, embeddings: TokenVectors) -> None:
        self.writer.add(token_matrices(embeddings, self.dim, self.config.engine))

    def _write(self, directory: Path) -> dict[str, Any]:
        fields = self.writer.close()
        tokens, offsets = read_tokens(directory, {"count": self.count, **fields})
        zero = torch.zeros(1, self.dim, dtype=torch.float16)  # an empty document gets one null token: it scores 0
        documents = [
            torch.from_numpy(np.array(tokens[lo:hi])) if hi > lo else zero for lo, hi in zip(offsets[:-1], offsets[1:])
        ]
        c = self.config
        engine = _fast_plaid().FastPlaid(index=str(directory / PLAID_DIR), device=c.device)
        engine.create(documents_embeddings=documents, kmeans_niters=c.kmeans_niters,
                      max_points_per_centroid=c.max_points_per_centroid, nbits=c.nbits, seed=c.seed,
                      use_triton_kmeans=c.use_triton_kmeans)
        del documents, tokens
        (directory / TOKENS_FILE).unlink()
        (directory / LENGTHS_FILE).unlink()
        return {**fields, "empty_docs": int(sum(n == 0 for n in self.writer.lengths))}

    def abort(self) -> None:
        self.writer.abort()
        super().abort()


class PlaidSearcher(Searcher):
    config: PlaidIndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: PlaidIndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        self.dim = int(manifest["dim"])
        self.engine = _fast_plaid().FastPlaid(index=str(self.directory / PLAID_DIR), device=config.device)

    def search_arrays(self, query_embeddings: TokenVectors, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = [torch.from_numpy(q).half() for q in token_matrices(query_embeddings, self.dim, self.config.engine)]
        c = self.config
        results = self.engine.search(queries_embeddings=queries, top_k=k, n_ivf_probe=c.n_ivf_probe,
                                     n_full_scores=max(c.n_full_scores, k), show_progress=False)
        rows = [
            top_k(np.array([s for _, s in hits], dtype=np.float32), np.array([p for p, _ in hits], dtype=np.int64), k)
            for hits in results
        ]
        return pad_results(rows, self.doc_ids, k)


@dataclass
class PlaidIndexConfig(IndexConfig):
    """fast-plaid's build and search settings (names as in fast-plaid).

    Build:
        nbits: bits per residual dimension (2 or 4; PLAID's residual compression).
        kmeans_niters, max_points_per_centroid: k-means of the centroids.
        use_triton_kmeans: fast-plaid's Triton k-means kernel (None: on GPUs with bf16). Triton compiles its
            kernels with the machine's C compiler at first use; False runs k-means in plain torch.
    Search (may be overridden per search):
        n_ivf_probe: centroids probed per query token.
        n_full_scores: candidates scored with full (decompressed) MaxSim.
        device: "cuda", "cpu", ... (None: every GPU if there are any, else the CPU).
    """

    engine: ClassVar[str] = "plaid"
    indexer_class: ClassVar[type[Indexer]] = PlaidIndexer
    searcher_class: ClassVar[type[Searcher]] = PlaidSearcher

    nbits: int = 4
    kmeans_niters: int = 4
    max_points_per_centroid: int = 256
    use_triton_kmeans: bool | None = None
    n_ivf_probe: int = 8
    n_full_scores: int = 4096
    device: str | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        if self.nbits not in (1, 2, 4, 8):
            raise ConfigError(f"nbits must be 1, 2, 4 or 8, got {self.nbits}.")
        if self.n_ivf_probe <= 0 or self.n_full_scores <= 0 or self.kmeans_niters <= 0:
            raise ConfigError("n_ivf_probe, n_full_scores and kmeans_niters must be positive.")


__all__ = ["PlaidIndexConfig", "PlaidIndexer", "PlaidSearcher"]
