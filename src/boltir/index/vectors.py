"""Turning a model's batch output into what sparse and multi-vector engines store, with clear errors on a mismatch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, IndexMismatchError, require
from ..types import TokenVectors

TOKENS_FILE = "tokens.bin"
LENGTHS_FILE = "doc_lengths.npy"
TOKEN_DTYPES = ("float16", "float32")


def scipy_sparse():
    return require("scipy.sparse", "scipy", "the sparse indexes", extra="sparse")


@dataclass
class SparseRows:
    """A batch of sparse vectors in CSR layout (row ``i`` is ``indices/values[indptr[i]:indptr[i+1]]``)."""

    indptr: np.ndarray  # int64 [batch + 1]
    indices: np.ndarray  # int64 [nnz], increasing within a row
    values: np.ndarray  # float32 [nnz]
    dim: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def to_scipy(self) -> Any:
        return scipy_sparse().csr_matrix((self.values, self.indices, self.indptr), shape=(len(self), self.dim))


def sparse_rows(embeddings: Any, dim: int, engine: str) -> SparseRows:
    """The non-zero entries of ``[batch, vocab]`` term weights (dense or torch-sparse, any device)."""
    if isinstance(embeddings, TokenVectors) or not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
        raise IndexMismatchError(
            f"the {engine} engine stores sparse [batch, vocab] term weights, got {_describe(embeddings)}: "
            "use a sparse model (SpladeModule), or an engine for this model's representation."
        )
    if embeddings.shape[1] != dim:
        raise IndexMismatchError(f"the {engine} index holds vectors over {dim} terms, got {embeddings.shape[1]}: use the model that built it.")
    dense = embeddings.detach()
    dense = dense.to_dense() if dense.layout != torch.strided else dense
    rows, cols = torch.nonzero(dense > 0, as_tuple=True)  # row-major order; zero and negative weights never match
    values = dense[rows, cols].float().cpu().numpy()
    counts = torch.bincount(rows, minlength=dense.shape[0]).cpu().numpy()
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SparseRows(indptr, cols.cpu().numpy().astype(np.int64), values, dim)


def token_matrices(embeddings: Any, dim: int, engine: str) -> list[np.ndarray]:
    """One float32 ``[n_i, dim]`` matrix per text, holding only the tokens that count."""
    if not isinstance(embeddings, TokenVectors):
        raise IndexMismatchError(
            f"the {engine} engine stores per-token vectors, got {_describe(embeddings)}: "
            "use a multi-vector model (ColBERTModule), or an engine for this model's representation."
        )
    if embeddings.dim != dim:
        raise IndexMismatchError(f"the {engine} index holds token vectors of dim {dim}, got {embeddings.dim}: use the model that built it.")
    on_cpu = TokenVectors(embeddings.vectors.detach().float().cpu(), embeddings.mask.cpu())  # one transfer per batch
    return [m.numpy() for m in on_cpu.unpadded()]


def _describe(embeddings: Any) -> str:
    if isinstance(embeddings, TokenVectors):
        return f"per-token vectors of dim {embeddings.dim}"
    if isinstance(embeddings, Tensor):
        return f"a tensor of shape {tuple(embeddings.shape)}"
    return type(embeddings).__name__


def top_k(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (score, position) pairs, best first; ties go to the earlier position (deterministic)."""
    if len(scores) > k:
        keep = np.argpartition(-scores, k - 1)[:k]
        scores, positions = scores[keep], positions[keep]
    order = np.lexsort((positions, -scores))
    return scores[order], positions[order]


def pad_results(rows: list[tuple[np.ndarray, np.ndarray]], doc_ids: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
    """Scores ``[Q, k]`` (missing results are -inf) and doc ids per query, as every Searcher returns them."""
    scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    ids = []
    for i, (row_scores, positions) in enumerate(rows):
        scores[i, : len(row_scores)] = row_scores
        ids.append([str(doc_ids[p]) for p in positions])
    return scores, ids


class TokenWriter:
    """Streams documents' token matrices to ``tokens.bin`` (row-major, one row per token) plus their lengths."""

    def __init__(self, directory: Path, dim: int, dtype: str = "float16") -> None:
        if dtype not in TOKEN_DTYPES:
            raise ConfigError(f"dtype='{dtype}' is not supported for stored token vectors; choose one of {list(TOKEN_DTYPES)}.")
        self.directory, self.dim, self.dtype = directory, dim, np.dtype(dtype)
        self._file = open(directory / TOKENS_FILE, "wb")
        self.lengths: list[int] = []

    def add(self, matrices: list[np.ndarray]) -> None:
        for matrix in matrices:
            self._file.write(np.ascontiguousarray(matrix, dtype=self.dtype).tobytes())
            self.lengths.append(len(matrix))

    def abort(self) -> None:
        self._file.close()

    def close(self) -> dict[str, Any]:
        """Finish the files; return the manifest fields a reader needs."""
        if not self._file.closed:
            self._file.close()
            np.save(self.directory / LENGTHS_FILE, np.asarray(self.lengths, dtype=np.int64))
        return {"dim": self.dim, "token_dtype": self.dtype.name, "num_tokens": int(sum(self.lengths))}


def read_tokens(directory: str | os.PathLike[str], manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The stored tokens as a read-only memory map ``[num_tokens, dim]`` and document offsets ``[count + 1]``."""
    directory = Path(directory)
    lengths = np.load(directory / LENGTHS_FILE)
    if len(lengths) != manifest["count"]:
        raise IndexMismatchError(f"{directory / LENGTHS_FILE} holds {len(lengths)} documents but the manifest counts {manifest['count']}: rebuild the index.")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    shape = (int(offsets[-1]), int(manifest["dim"]))
    if shape[0] == 0:
        return np.zeros(shape, dtype=manifest["token_dtype"]), offsets
    tokens = np.memmap(directory / TOKENS_FILE, dtype=manifest["token_dtype"], mode="r", shape=shape)
    return tokens, offsets


__all__ = ["SparseRows", "TokenWriter", "pad_results", "read_tokens", "sparse_rows", "token_matrices", "top_k"]
