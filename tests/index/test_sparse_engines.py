"""Seismic and the exact inverted index: agreement, empty vectors, streaming, atomic finish, clear mismatches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import IndexMismatchError
from boltir.index import INDEX_ENGINES, SeismicIndexConfig, SparseExactIndexConfig, open_searcher
from boltir.index import seismic as seismic_index
from boltir.models.layers import TokenVectors

from .stubs import StubModel

ENGINES = [SeismicIndexConfig(), SparseExactIndexConfig()]
IDS = ["seismic", "exact"]


def _sparse(n: int, dim: int, nnz: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    vectors = torch.zeros(n, dim)
    for row in vectors:
        terms = torch.randperm(dim, generator=g)[:nnz]
        row[terms] = torch.rand(nnz, generator=g) * 3
    return vectors


def _build(config, directory, docs: torch.Tensor, batch: int = 64):
    indexer = config.indexer(directory, StubModel("sparse", docs.shape[1]))
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        indexer.add([f"d{start + i}" for i in range(len(chunk))], chunk)
    return indexer.finish()


def _brute_force(queries: torch.Tensor, docs: torch.Tensor, k: int) -> list[list[str]]:
    scores = queries @ docs.T
    return [[f"d{j}" for j in row.argsort(descending=True, stable=True)[:k].tolist() if scores[i, j] > 0]
            for i, row in enumerate(scores)]


def test_engines_are_registered_for_sparse_vectors():
    assert INDEX_ENGINES["seismic"] is SeismicIndexConfig and INDEX_ENGINES["sparse-exact"] is SparseExactIndexConfig


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 20))
def test_exact_search_matches_brute_force(tmp_path_factory, seed, k):
    docs, queries = _sparse(120, 300, 12, seed), _sparse(7, 300, 6, seed + 1)
    directory = _build(SparseExactIndexConfig(), tmp_path_factory.mktemp("exact") / "index", docs, batch=50)
    scores, ids = open_searcher(directory).search_arrays(queries, k)
    expected = queries @ docs.T
    for i, row in enumerate(ids):
        assert row == _brute_force(queries, docs, k)[i]
        assert scores[i, : len(row)] == pytest.approx([float(expected[i, int(d[1:])]) for d in row], rel=1e-5)
        assert np.isneginf(scores[i, len(row) :]).all()


def test_seismic_agrees_with_exact(tmp_path):
    # uniformly random vectors are Seismic's hardest case (no term is more telling than another)
    docs, queries = _sparse(2000, 1000, 40, 0), _sparse(50, 1000, 15, 1)
    exact = open_searcher(_build(SparseExactIndexConfig(), tmp_path / "exact", docs))
    _build(SeismicIndexConfig(), tmp_path / "seismic", docs)
    exact_scores, exact_ids = exact.search_arrays(queries, 10)
    for heap_factor, goal in ((0.7, 0.98), (0.3, 1.0)):  # a lower heap factor skips fewer blocks
        seismic_scores, seismic_ids = open_searcher(tmp_path / "seismic", heap_factor=heap_factor).search_arrays(queries, 10)
        recall = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact_ids, seismic_ids)])
        assert recall >= goal
    np.testing.assert_allclose(seismic_scores, exact_scores, rtol=2e-3)  # Seismic stores weights in f16
    # the same queries always get the same answers (pyseismic's batch_search did not: see SeismicSearcher)
    searcher = open_searcher(tmp_path / "seismic")
    first = searcher.search_arrays(queries, 10)[1]
    assert all(searcher.search_arrays(queries, 10)[1] == first for _ in range(10))


@pytest.mark.parametrize("config", ENGINES, ids=IDS)
def test_empty_document_vectors_are_stored_but_never_returned(config, tmp_path):
    docs = _sparse(10, 50, 5, 3)
    docs[[0, 4, 9]] = 0  # all weights pruned
    directory = _build(config, tmp_path / "index", docs, batch=3)
    searcher = open_searcher(directory)
    assert len(searcher.doc_ids) == 10 and searcher.manifest["empty_docs"] == 3
    _, ids = searcher.search_arrays(torch.ones(2, 50), 10)
    assert all(set(row) == {f"d{i}" for i in range(10)} - {"d0", "d4", "d9"} for row in ids)
    scores, ids = searcher.search_arrays(torch.zeros(1, 50), 5)  # an empty query matches nothing
    assert ids == [[]] and np.isneginf(scores).all()


@pytest.mark.parametrize("config", ENGINES, ids=IDS)
def test_a_collection_of_only_empty_vectors_indexes_and_finds_nothing(config, tmp_path):
    directory = _build(config, tmp_path / "index", torch.zeros(4, 30))
    _, ids = open_searcher(directory).search_arrays(_sparse(2, 30, 3, 0), 3)
    assert ids == [[], []]


class _OneAtATime:
    """pyseismic-lsr 0.5.2's dataset API (the newest with Python 3.12 wheels): documents added one by one."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def add_document(self, doc_id, tokens, values) -> None:
        self.dataset.add_document(doc_id, tokens, values)


def test_seismic_without_batch_adds_stores_the_same_index(tmp_path, monkeypatch):
    docs, queries = _sparse(300, 500, 20, 2), _sparse(20, 500, 8, 3)
    docs[[5, 77]] = 0
    batched = open_searcher(_build(SeismicIndexConfig(), tmp_path / "batched", docs)).search_arrays(queries, 10)
    original = seismic_index.add_rows
    monkeypatch.setattr(seismic_index, "add_rows", lambda dataset, rows, first: original(_OneAtATime(dataset), rows, first))
    directory = _build(SeismicIndexConfig(), tmp_path / "one-by-one", docs)
    searcher = open_searcher(directory)
    assert searcher.manifest["stored_docs"] == 298 and searcher.manifest["empty_docs"] == 2
    scores, ids = searcher.search_arrays(queries, 10)
    assert ids == batched[1]
    np.testing.assert_allclose(scores, batched[0], rtol=1e-6)  # term order differs: float sums by an ulp


def test_large_vocabularies_use_seismics_wide_term_ids(tmp_path):
    docs = _sparse(30, 70_000, 8, 5)
    docs[:, 69_999] = 1.0
    query = torch.zeros(1, 70_000)
    query[0, 69_999] = 1.0
    _, ids = open_searcher(_build(SeismicIndexConfig(), tmp_path / "index", docs)).search_arrays(query, 30)
    assert len(ids[0]) == 30


@pytest.mark.parametrize("config", ENGINES, ids=IDS)
def test_dense_and_multi_vector_inputs_are_refused_clearly(config, tmp_path):
    with pytest.raises(IndexMismatchError, match="sparse vectors, but the model makes dense"):
        config.indexer(tmp_path / "dense", StubModel("dense", 50))
    searcher = open_searcher(_build(config, tmp_path / "index", _sparse(5, 50, 4, 0)))
    with pytest.raises(IndexMismatchError, match="50 terms, got 384"):
        searcher.search_arrays(torch.randn(2, 384), 3)
    with pytest.raises(IndexMismatchError, match="per-token vectors"):
        searcher.search_arrays(TokenVectors(torch.randn(1, 3, 50), torch.ones(1, 3)), 3)
    with pytest.raises(IndexMismatchError, match="holds sparse vectors .* makes dense ones"):
        searcher.check_model(StubModel("dense", 50))


@pytest.mark.parametrize("config", ENGINES, ids=IDS)
def test_finish_is_atomic_and_abort_leaves_nothing(config, tmp_path):
    first = _build(config, tmp_path / "index", _sparse(5, 20, 3, 0))
    indexer = config.indexer(first, StubModel("sparse", 20))
    indexer.add(["x"], _sparse(1, 20, 3, 1))
    indexer.abort()
    assert len(open_searcher(first).doc_ids) == 5  # the old index is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    _build(config, first, _sparse(7, 20, 3, 2))
    assert len(open_searcher(first).doc_ids) == 7


def test_search_settings_override_seismic_at_open(tmp_path):
    directory = _build(SeismicIndexConfig(), tmp_path / "index", _sparse(50, 40, 5, 0))
    searcher = open_searcher(directory, heap_factor=0.5, query_cut=3)
    assert searcher.config.heap_factor == 0.5 and searcher.config.query_cut == 3
    assert len(searcher.search_arrays(_sparse(1, 40, 5, 1), 5)[1][0]) <= 5
