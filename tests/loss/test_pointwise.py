import math

import torch

from boltir.loss import BCELoss, MSELoss

from .helpers import check_against_hand, loss_and_grad, sigmoid

SCORES = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]
TARGETS = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]]


def test_mse_matches_hand_computation():
    def value(s, t):
        return sum((si - ti) ** 2 for si, ti in zip(s, t)) / len(s)

    def grad(s, t):
        return [2 * (si - ti) / len(s) for si, ti in zip(s, t)]

    check_against_hand(MSELoss(), SCORES, TARGETS, value, grad)


def test_bce_matches_hand_computation():
    def value(s, t):
        terms = [-(ti * math.log(sigmoid(si)) + (1 - ti) * math.log(1 - sigmoid(si))) for si, ti in zip(s, t)]
        return sum(terms) / len(s)

    def grad(s, t):
        return [(sigmoid(si) - ti) / len(s) for si, ti in zip(s, t)]

    check_against_hand(BCELoss(), SCORES, TARGETS, value, grad)


def test_bce_stays_finite_for_huge_scores():
    value, grad = loss_and_grad(BCELoss(), [[1e4, -1e4]], [[0.0, 1.0]])
    assert math.isclose(value, 1e4)
    assert torch.isfinite(grad).all()


def test_ties_and_all_zero_labels():
    value, grad = loss_and_grad(MSELoss(), [[1.0, 1.0]], [[0.0, 0.0]])
    assert value == 1.0
    assert grad.tolist() == [[1.0, 1.0]]
    value, _ = loss_and_grad(BCELoss(), [[0.0, 0.0]], [[0.0, 0.0]])
    assert math.isclose(value, math.log(2))
