"""Hybrid retrieval by run fusion: weighted sums of (min-max scaled) scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boltir import ConfigError, Run, fuse_runs

_scores = st.dictionaries(st.sampled_from([f"d{i}" for i in range(8)]), st.integers(-50, 50).map(float), min_size=1)
_runs = st.dictionaries(st.sampled_from(["q1", "q2", "q3"]), _scores, min_size=1).map(Run)


@given(_runs, _runs)
def test_a_zero_weight_run_leaves_the_other_runs_order(first, second):
    fused = fuse_runs([first, second], [1.0, 0.0])
    for qid in first:
        assert [d for d, _ in fused[qid] if d in first.rankings[qid]] == [d for d, _ in first[qid]]


@given(_runs, _runs, st.floats(0, 3), st.floats(0, 3))
def test_minmax_fusion_is_bounded_and_covers_every_document(first, second, w1, w2):
    fused = fuse_runs([first, second], [w1, w2])
    assert set(fused.query_ids) == set(first.query_ids) | set(second.query_ids)
    for qid in fused:
        docs = set(first.rankings.get(qid, {})) | set(second.rankings.get(qid, {}))
        assert set(fused.rankings[qid]) == docs
        assert all(-1e-9 <= s <= w1 + w2 + 1e-9 for s in fused.rankings[qid].values())


def test_weighted_sum_of_raw_scores():
    dense = Run({"q": {"a": 0.9, "b": 0.1}})
    sparse = Run({"q": {"b": 10.0, "c": 4.0}})
    fused = fuse_runs([dense, sparse], [2.0, 0.5], normalize="none")
    # a document a run missed gets that run's lowest score for the query
    assert fused.rankings["q"] == pytest.approx({"a": 2 * 0.9 + 0.5 * 4.0, "b": 2 * 0.1 + 0.5 * 10.0, "c": 2 * 0.1 + 0.5 * 4.0})
    assert fuse_runs([dense, sparse]).rankings["q"] == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})


def test_bad_fusion_options_are_named():
    with pytest.raises(ConfigError, match="weight"):
        fuse_runs([Run({"q": {"a": 1.0}})], [1.0, 2.0])
    with pytest.raises(ConfigError, match="normalize"):
        fuse_runs([Run({"q": {"a": 1.0}})], normalize="zscore")
