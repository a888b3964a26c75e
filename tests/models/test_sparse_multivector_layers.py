"""Property tests of the sparse (SPLADE) and multi-vector (ColBERT) layers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import ConfigError
from boltir.models.layers import (
    LogSaturation,
    TokenVectors,
    TopKPruning,
    VocabularyPooling,
    maxsim,
    restrict_to_input_tokens,
)

SEEDS = st.integers(0, 2**16)


def _token_vectors(seed: int, batch: int, tokens: int, dim: int = 4) -> TokenVectors:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, tokens, generator=g) > 0.3
    mask[:, 0] = True
    return TokenVectors(torch.randn(batch, tokens, dim, generator=g) * mask.unsqueeze(-1), mask)


def test_log_saturation_is_zero_for_negatives_and_grows_slowly():
    out = LogSaturation()(torch.tensor([-3.0, 0.0, 1.0, 100.0]))
    assert out[:2].eq(0).all() and out[2] == pytest.approx(0.6931, abs=1e-4) and out[3] < 5


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, strategy=st.sampled_from(["max", "sum"]))
def test_vocabulary_pooling_ignores_padding_and_token_order(seed, strategy):
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(2, 5, 7, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooling = VocabularyPooling(strategy)
    pooled = pooling(weights, mask)
    permuted = pooling(weights[:, [2, 0, 1, 4, 3]], mask[:, [2, 0, 1, 4, 3]])
    torch.testing.assert_close(pooled, permuted)
    torch.testing.assert_close(pooled[:1], pooling(weights[:1, :3], mask[:1, :3]))


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, k=st.integers(1, 12))
def test_top_k_keeps_the_k_largest_weights(seed, k):
    vectors = torch.relu(torch.randn(3, 10, generator=torch.Generator().manual_seed(seed)))
    pruned = TopKPruning(k)(vectors)
    assert ((pruned > 0).sum(-1) <= min(k, 10)).all()
    assert ((pruned == 0) | (pruned == vectors)).all()  # kept weights are unchanged
    dropped_max = torch.where(pruned == 0, vectors, torch.zeros_like(vectors)).amax(-1)
    kept_min = torch.where(pruned > 0, pruned, torch.full_like(pruned, float("inf"))).amin(-1)
    assert (dropped_max <= kept_min).all()
    torch.testing.assert_close(TopKPruning(k)(pruned), pruned)


def test_restrict_to_input_tokens_keeps_only_own_non_special_tokens():
    vectors = torch.ones(2, 8)
    ids = torch.tensor([[0, 3, 5, 1], [0, 6, 1, 2]])  # 0 = [CLS], 1 = [SEP], 2 = [PAD]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    out = restrict_to_input_tokens(vectors, ids, mask, ignore_ids=[0, 1, 2])
    assert out[0].nonzero().flatten().tolist() == [3, 5]
    assert out[1].nonzero().flatten().tolist() == [6]


def test_bad_layer_settings_are_config_errors():
    with pytest.raises(ConfigError, match="mean"):
        VocabularyPooling("mean")
    with pytest.raises(ConfigError, match="k > 0"):
        TopKPruning(0)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, nq=st.integers(1, 3), nd=st.integers(1, 4))
def test_maxsim_matches_a_plain_loop(seed, nq, nd):
    queries, docs = _token_vectors(seed, nq, 3), _token_vectors(seed + 1, nd, 6)
    scores = maxsim(queries, docs)
    for i in range(nq):
        for j in range(nd):
            q, d = queries.unpadded()[i], docs.unpadded()[j]
            assert scores[i, j] == pytest.approx(float((q @ d.T).amax(1).sum()), abs=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS)
def test_maxsim_ignores_document_token_order_and_padding(seed):
    queries, docs = _token_vectors(seed, 2, 3), _token_vectors(seed + 1, 3, 5)
    order = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
    shuffled = TokenVectors(docs.vectors[:, order], docs.mask[:, order])
    longer = TokenVectors.cat([docs, _token_vectors(seed, 1, 9)])[:3]
    torch.testing.assert_close(maxsim(queries, docs), maxsim(queries, shuffled))
    torch.testing.assert_close(maxsim(queries, docs), maxsim(queries, longer))


def test_maxsim_of_a_document_without_tokens_is_zero():
    queries = _token_vectors(0, 1, 3)
    empty = TokenVectors(torch.zeros(1, 4, 4), torch.zeros(1, 4, dtype=torch.bool))
    assert maxsim(queries, empty).item() == 0.0


def test_token_vectors_select_and_concatenate():
    a, b = _token_vectors(0, 2, 3), _token_vectors(1, 1, 5)
    both = TokenVectors.cat([a, b])
    assert len(both) == 3 and both.vectors.shape == (3, 5, 4) and not both.mask[:2, 3:].any()
    assert [len(m) for m in both.unpadded()] == [int(a.mask[0].sum()), int(a.mask[1].sum()), int(b.mask[0].sum())]
    picked = both[torch.tensor([2, 0])]
    torch.testing.assert_close(picked.vectors[1, :3], a.vectors[0])
    with pytest.raises(ValueError):
        TokenVectors(torch.zeros(2, 3, 4), torch.ones(2, 4))
