"""The exact MaxSim index (Faiss token candidates or exhaustive) and the PLAID engine's guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import IndexMismatchError, MissingDependencyError
from boltir.index import INDEX_ENGINES, MultiVectorExactIndexConfig, PlaidIndexConfig, open_searcher, resolve_index
from boltir.models.layers import TokenVectors, maxsim

from .stubs import StubModel

DIM = 8


def _tokens(n: int, length: int, seed: int, empty: tuple[int, ...] = ()) -> TokenVectors:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    lengths[list(empty)] = 0
    mask = torch.arange(length)[None, :] < lengths[:, None]
    vectors = F.normalize(torch.randn(n, length, DIM, generator=g), dim=-1) * mask.unsqueeze(-1)
    return TokenVectors(vectors, mask)


def _build(config, directory, docs: TokenVectors, batch: int = 16):
    indexer = config.indexer(directory, StubModel("multi-vector", DIM))
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        indexer.add([f"d{start + i}" for i in range(len(chunk))], chunk)
    return indexer.finish()


def test_engines_are_registered_for_multi_vectors():
    assert INDEX_ENGINES["plaid"] is PlaidIndexConfig and INDEX_ENGINES["multivector-exact"] is MultiVectorExactIndexConfig


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 12), chunk=st.sampled_from([5, 64, 100_000]))
def test_exhaustive_search_is_maxsim_over_every_document(tmp_path_factory, seed, k, chunk):
    docs, queries = _tokens(40, 9, seed), _tokens(3, 4, seed + 1)
    config = MultiVectorExactIndexConfig(token_dtype="float32", candidates_per_token=None, chunk_tokens=chunk)
    scores, ids = open_searcher(_build(config, tmp_path_factory.mktemp("mv") / "index", docs)).search_arrays(queries, k)
    expected = maxsim(queries, docs)
    for i, row in enumerate(ids):
        best = expected[i].argsort(descending=True, stable=True)[:k]
        assert row == [f"d{j}" for j in best.tolist()]
        np.testing.assert_allclose(scores[i], expected[i, best].numpy(), rtol=1e-5, atol=1e-5)


def test_faiss_candidates_find_the_exhaustive_top_k(tmp_path):
    docs, queries = _tokens(300, 12, 0), _tokens(10, 6, 1)
    _build(MultiVectorExactIndexConfig(candidates_per_token=None), tmp_path / "index", docs)
    exhaustive_scores, exhaustive = open_searcher(tmp_path / "index").search_arrays(queries, 10)
    few_scores, few = open_searcher(tmp_path / "index", candidates_per_token=2).search_arrays(queries, 10)
    many_scores, many = open_searcher(tmp_path / "index", candidates_per_token=300).search_arrays(queries, 10)
    assert many == exhaustive
    np.testing.assert_allclose(many_scores, exhaustive_scores, rtol=1e-6)
    # fewer candidates may miss documents, but the ones found carry their exact score
    all_scores, all_ids = open_searcher(tmp_path / "index").search_arrays(queries, 300)
    for i, row in enumerate(few):
        exact = dict(zip(all_ids[i], all_scores[i]))
        assert 0 < len(row) <= 10 and few_scores[i, : len(row)] == pytest.approx([exact[d] for d in row], rel=1e-6)


def test_stored_float16_tokens_score_like_the_model(tmp_path):
    docs, queries = _tokens(50, 10, 2), _tokens(2, 5, 3)
    scores, ids = open_searcher(_build(MultiVectorExactIndexConfig(), tmp_path / "index", docs)).search_arrays(queries, 5)
    expected = maxsim(queries, docs)
    for i, row in enumerate(ids):
        np.testing.assert_allclose(scores[i], [float(expected[i, int(d[1:])]) for d in row], atol=5e-3)


@pytest.mark.parametrize("candidates", [100, None], ids=["candidates", "exhaustive"])
def test_documents_without_tokens_are_never_returned(tmp_path, candidates):
    docs = _tokens(10, 6, 4, empty=(0, 5))
    searcher = open_searcher(_build(MultiVectorExactIndexConfig(candidates_per_token=candidates), tmp_path / "index", docs))
    assert searcher.manifest["empty_docs"] == 2 and len(searcher.doc_ids) == 10
    _, ids = searcher.search_arrays(_tokens(2, 3, 5), 10)
    assert all(len(row) == 8 and not {"d0", "d5"} & set(row) for row in ids)
    _, ids = searcher.search_arrays(_tokens(1, 3, 5, empty=(0,)), 10)  # a query without tokens matches nothing
    assert ids == [[]]


def test_only_empty_documents(tmp_path):
    searcher = open_searcher(_build(MultiVectorExactIndexConfig(), tmp_path / "index", _tokens(3, 4, 0, empty=(0, 1, 2))))
    assert searcher.search_arrays(_tokens(2, 3, 1), 5)[1] == [[], []]


def test_dense_and_sparse_inputs_are_refused_clearly(tmp_path):
    with pytest.raises(IndexMismatchError, match="multi-vector vectors, but the model makes sparse"):
        MultiVectorExactIndexConfig().indexer(tmp_path / "x", StubModel("sparse", DIM))
    searcher = open_searcher(_build(MultiVectorExactIndexConfig(), tmp_path / "index", _tokens(4, 3, 0)))
    with pytest.raises(IndexMismatchError, match="per-token vectors, got a tensor of shape"):
        searcher.search_arrays(torch.randn(2, DIM), 3)
    with pytest.raises(IndexMismatchError, match="dim 8, got 4"):
        searcher.search_arrays(TokenVectors(torch.randn(1, 2, 4), torch.ones(1, 2)), 3)
    with pytest.raises(IndexMismatchError, match="holds multi-vector vectors"):
        searcher.check_model(StubModel("dense", DIM))


def test_plaid_needs_its_extra(tmp_path):
    # fast-plaid pins another torch; on CPU CI it is absent and the engine says how to get it
    try:
        import fast_plaid  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"boltir\[plaid\]"):
            PlaidIndexConfig().indexer(tmp_path / "plaid", StubModel("multi-vector", DIM))
        with pytest.raises(IndexMismatchError, match="not a complete boltir index"):  # and the lock is free again
            open_searcher(tmp_path / "plaid")
        _build(MultiVectorExactIndexConfig(), tmp_path / "plaid", _tokens(5, 3, 0))
    else:
        _build(PlaidIndexConfig(), tmp_path / "plaid", _tokens(50, 8, 0))
        assert len(open_searcher(tmp_path / "plaid").search_arrays(_tokens(2, 4, 1), 5)[1][0]) == 5


@pytest.mark.usefixtures("fake_fast_plaid")
def test_plaid_glue_streams_documents_in_order_and_maps_ids_back(tmp_path):
    docs, queries = _tokens(30, 6, 0, empty=(7,)), _tokens(4, 3, 1)
    plaid = open_searcher(_build(PlaidIndexConfig(), tmp_path / "plaid", docs, batch=8))
    exact = open_searcher(_build(MultiVectorExactIndexConfig(candidates_per_token=None), tmp_path / "exact", docs))
    assert sorted(p.name for p in resolve_index(tmp_path / "plaid").iterdir()) == ["doc_ids.txt", "manifest.json", "plaid"]  # raw tokens dropped
    assert plaid.manifest["empty_docs"] == 1
    plaid_scores, plaid_ids = plaid.search_arrays(queries, 5)
    exact_scores, exact_ids = exact.search_arrays(queries, 5)
    assert plaid_ids == exact_ids
    np.testing.assert_allclose(plaid_scores, exact_scores, atol=5e-3)
