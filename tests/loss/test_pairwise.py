import math

import pytest

from boltir.errors import ConfigError
from boltir.loss import HingeLoss, MarginMSELoss, RankNetLoss

from .helpers import check_against_hand, loss_and_grad, sigmoid

SCORES = [[2.0, 0.5, 1.0, -1.0], [0.3, 0.9, -0.2, 0.0]]
TARGETS = [[3.0, 1.0, 2.0, 1.0], [1.0, 0.0, 0.0, 0.5]]


def pairs(t):
    """(i, j) with t_i > t_j: ties, such as the two 1.0 labels above, make no pair."""
    return [(i, j) for i in range(len(t)) for j in range(len(t)) if t[i] > t[j]]


def test_ranknet_matches_hand_computation():
    def value(s, t):
        return sum(math.log(1 + math.exp(-(s[i] - s[j]))) for i, j in pairs(t)) / len(pairs(t))

    def grad(s, t):
        g = [0.0] * len(s)
        for i, j in pairs(t):
            step = sigmoid(-(s[i] - s[j])) / len(pairs(t))
            g[i] -= step
            g[j] += step
        return g

    check_against_hand(RankNetLoss(), SCORES, TARGETS, value, grad)


def test_margin_mse_matches_hand_computation():
    def value(s, t):
        return sum(((s[i] - s[j]) - (t[i] - t[j])) ** 2 for i, j in pairs(t)) / len(pairs(t))

    def grad(s, t):
        g = [0.0] * len(s)
        for i, j in pairs(t):
            step = 2 * ((s[i] - s[j]) - (t[i] - t[j])) / len(pairs(t))
            g[i] += step
            g[j] -= step
        return g

    check_against_hand(MarginMSELoss(), SCORES, TARGETS, value, grad)


@pytest.mark.parametrize("margin", [1.0, 0.25])
def test_hinge_matches_hand_computation(margin):
    def value(s, t):
        return sum(max(0.0, margin - (s[i] - s[j])) for i, j in pairs(t)) / len(pairs(t))

    def grad(s, t):
        g = [0.0] * len(s)
        for i, j in pairs(t):
            if margin - (s[i] - s[j]) > 0:
                g[i] -= 1 / len(pairs(t))
                g[j] += 1 / len(pairs(t))
        return g

    check_against_hand(HingeLoss(margin), SCORES, TARGETS, value, grad)


def test_tied_scores_cost_log2_per_pair_and_tied_targets_make_no_pair():
    value, grad = loss_and_grad(RankNetLoss(), [[0.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]])
    assert math.isclose(value, math.log(2))
    assert grad[0].tolist() == pytest.approx([-0.25, -0.25, 0.5])


@pytest.mark.parametrize("loss", [RankNetLoss(), MarginMSELoss(), HingeLoss()])
@pytest.mark.parametrize("targets", [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
def test_queries_without_pairs_contribute_zero(loss, targets):
    value, grad = loss_and_grad(loss, [[3.0, -1.0, 0.5], [1.0, 0.0, 0.0]], [targets, [1.0, 0.0, 0.0]])
    only_second, _ = loss_and_grad(loss, [[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]])
    assert value == pytest.approx(only_second / 2)
    assert grad[0].tolist() == [0.0, 0.0, 0.0]


def test_hinge_rejects_negative_margin():
    with pytest.raises(ConfigError, match="margin"):
        HingeLoss(margin=-1.0)
