"""Evaluation through ir-measures: values, unknown measures, tables."""

from __future__ import annotations

import math

import pytest

from boltir import ConfigError, Run, evaluate, format_table


def test_values_match_hand_computation():
    run = Run({"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d4": 1.0, "d5": 0.5}})
    qrels = {"q1": {"d2": 1}, "q2": {"d5": 1, "d6": 1}, "q3": {"d1": 1}}
    results = evaluate(run, qrels, ["nDCG@10", "RR@10", "R@100"])
    ndcg_q1 = 1 / math.log2(3)
    ndcg_q2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert results["nDCG@10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 0) / 3)  # q3 has no results: 0
    assert results["RR@10"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert results["R@100"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_unknown_measure():
    with pytest.raises(ConfigError, match="'nDCG@ten' is not an ir-measures measure"):
        evaluate(Run({"q": {"d": 1.0}}), {"q": {"d": 1}}, ["nDCG@ten"])


def test_table_has_a_row_per_run():
    table = format_table({"bm25": {"nDCG@10": 0.5, "RR@10": 0.25}, "dense": {"nDCG@10": 0.75, "RR@10": 0.5}})
    lines = table.splitlines()
    assert lines[0].split() == ["run", "nDCG@10", "RR@10"]
    assert lines[2].split() == ["bm25", "0.5000", "0.2500"] and lines[3].split() == ["dense", "0.7500", "0.5000"]
