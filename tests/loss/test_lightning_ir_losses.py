"""ConstantMarginMSE, Pearson correlation and ApproxRankMSE (no / log2 / reciprocal discount): where each has its
minimum and what it is invariant to, on random lists (hypothesis), plus a hand computation each."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from boltir import ConfigError
from boltir.loss import (
    ApproxDiscountedRankMSELoss,
    ApproxRankMSELoss,
    ConstantMarginMSELoss,
    MarginMSELoss,
    PearsonCorrelationLoss,
    build_loss,
)

SETTINGS = settings(max_examples=60, deadline=None)
GAP = 30.0  # sigmoid(-30) ~ 1e-13: approximate ranks are then exact ranks

floats = st.floats(-5, 5, allow_nan=False)
levels = st.lists(st.integers(0, 3).map(float), min_size=2, max_size=7)
binary = st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=7)


def row(values) -> torch.Tensor:
    return torch.tensor([values], dtype=torch.float64)


@st.composite
def scored(draw, targets=levels):
    t = draw(targets)
    return draw(st.lists(floats, min_size=len(t), max_size=len(t))), t


# -- ConstantMarginMSE ---------------------------------------------------------------------------
@SETTINGS
@given(targets=binary, margin=st.floats(0, 5), data=st.data())
def test_constant_margin_mse_is_zero_at_the_margin_and_no_lower_elsewhere(targets, margin, data):
    loss = ConstantMarginMSELoss(margin)
    t = row(targets)
    at_target = loss(margin * t, t).item()
    assert at_target == pytest.approx(0.0, abs=1e-12)
    other = data.draw(st.lists(floats, min_size=len(targets), max_size=len(targets)))
    assert loss(row(other), t).item() >= at_target


@SETTINGS
@given(batch=scored(), shift=floats, margin=st.floats(0, 5))
def test_constant_margin_mse_ignores_shifts_and_target_sizes(batch, shift, margin):
    scores, targets = batch
    loss = ConstantMarginMSELoss(margin)
    value = loss(row(scores), row(targets)).item()
    assert loss(row(scores) + shift, row(targets)).item() == pytest.approx(value, rel=1e-9, abs=1e-9)
    # only which entry is better counts, not by how much: any increasing map of the targets gives the same loss
    assert loss(row(scores), row(targets).exp() * 7).item() == pytest.approx(value, rel=1e-9, abs=1e-9)


@SETTINGS
@given(batch=scored(binary), margin=st.floats(0, 5))
def test_constant_margin_mse_is_margin_mse_with_margin_sized_teacher_gaps(batch, margin):
    scores, targets = batch
    assume(margin > 0)
    t = row(targets)
    torch.testing.assert_close(ConstantMarginMSELoss(margin)(row(scores), t), MarginMSELoss()(row(scores), margin * t))


def test_constant_margin_mse_by_hand():
    # targets 2, 1, 0: pairs (0, 1), (0, 2), (1, 2) with score margins 0.5, 2 and 1.5
    value = ConstantMarginMSELoss(1.0)(row([1.0, 0.5, -1.0]), row([2.0, 1.0, 0.0])).item()
    assert value == pytest.approx(((0.5 - 1) ** 2 + (2 - 1) ** 2 + (1.5 - 1) ** 2) / 3)
    with pytest.raises(ConfigError, match="margin"):
        ConstantMarginMSELoss(-1.0)


# -- Pearson correlation -------------------------------------------------------------------------
@SETTINGS
@given(targets=levels, scale=st.floats(0.01, 100), shift=floats)
def test_pearson_is_zero_for_any_increasing_linear_map_of_the_targets_and_two_for_a_decreasing_one(targets, scale, shift):
    assume(len(set(targets)) > 1)
    t = row(targets)
    assert PearsonCorrelationLoss()(scale * t + shift, t).item() == pytest.approx(0.0, abs=1e-9)
    assert PearsonCorrelationLoss()(-scale * t + shift, t).item() == pytest.approx(2.0, abs=1e-9)


@SETTINGS
@given(batch=scored(), scale=st.floats(0.01, 100), shift=floats)
def test_pearson_ignores_the_scale_and_shift_of_scores_and_stays_in_zero_to_two(batch, scale, shift):
    scores, targets = batch
    assume(max(scores) - min(scores) > 1e-3)
    loss = PearsonCorrelationLoss()
    value = loss(row(scores), row(targets)).item()
    assert 0.0 - 1e-9 <= value <= 2.0 + 1e-9
    assert loss(scale * row(scores) + shift, row(targets)).item() == pytest.approx(value, rel=1e-7, abs=1e-9)


def test_pearson_by_hand_and_without_anything_to_correlate():
    s, t = [1.0, 2.0, 4.0], [0.0, 1.0, 1.0]
    ms, mt = sum(s) / 3, sum(t) / 3
    cov = sum((a - ms) * (b - mt) for a, b in zip(s, t))
    r = cov / math.sqrt(sum((a - ms) ** 2 for a in s) * sum((b - mt) ** 2 for b in t))
    assert PearsonCorrelationLoss()(row(s), row(t)).item() == pytest.approx(1 - r)
    assert PearsonCorrelationLoss()(row(s), row([1.0, 1.0, 1.0])).item() == 0.0


# -- ApproxRankMSE -------------------------------------------------------------------------------
DISCOUNTS = [None, "reciprocal", "log2"]


@pytest.mark.parametrize("discount", DISCOUNTS)
@SETTINGS
@given(targets=levels, shift=floats)
def test_approx_rank_mse_is_zero_when_the_scores_rank_as_the_targets(discount, targets, shift):
    t = row(targets)
    loss = ApproxRankMSELoss(discount=discount)
    assert loss(GAP * t + shift, t).item() == pytest.approx(0.0, abs=1e-9)  # tied targets, tied scores: mean ranks


@pytest.mark.parametrize("discount", DISCOUNTS)
@SETTINGS
@given(batch=scored(), shift=floats)
def test_approx_rank_mse_ignores_shifts_and_any_increasing_map_of_the_targets(discount, batch, shift):
    scores, targets = batch
    loss = ApproxRankMSELoss(discount=discount)
    value = loss(row(scores), row(targets)).item()
    assert loss(row(scores) + shift, row(targets)).item() == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert loss(row(scores), row(targets) ** 3 + 5).item() == pytest.approx(value, rel=1e-9, abs=1e-9)


@SETTINGS
@given(batch=scored())
def test_discounts_only_lower_the_loss_and_log2_is_rank_distillms(batch):
    scores, targets = map(row, batch)
    plain = ApproxRankMSELoss()(scores, targets).item()
    assert ApproxRankMSELoss(discount="reciprocal")(scores, targets).item() <= plain + 1e-12
    assert ApproxRankMSELoss(discount="log2")(scores, targets).item() <= plain + 1e-12
    torch.testing.assert_close(ApproxRankMSELoss(discount="log2")(scores, targets),
                               ApproxDiscountedRankMSELoss()(scores, targets))


def test_approx_rank_mse_by_hand():
    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    s, t = [0.0, 1.0], [1.0, 0.0]  # teacher ranks 1, 2; approximate ranks 1 + sig(1), 1 + sig(-1)
    errors = [(1 + sig(1) - 1) ** 2, (1 + sig(-1) - 2) ** 2]
    assert ApproxRankMSELoss()(row(s), row(t)).item() == pytest.approx(sum(errors) / 2)
    assert build_loss({"name": "approx_rank_mse", "discount": "reciprocal"})(row(s), row(t)).item() == pytest.approx(
        (errors[0] / 1 + errors[1] / 2) / 2)
    with pytest.raises(ConfigError, match="discount"):
        ApproxRankMSELoss(discount="linear")
