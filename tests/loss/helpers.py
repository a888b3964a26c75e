"""Shared test helpers: hand-computed references in plain Python floats, compared with the torch losses."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
import torch

from boltir.loss import RankingLoss

Vector = Sequence[float]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softmax(xs: Vector) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]


def numeric_grad(f: Callable[[list[float]], float], xs: Vector, h: float = 1e-6) -> list[float]:
    """Central differences of a plain-Python function: an independent check of autograd."""
    grads = []
    for k in range(len(xs)):
        up, down = list(xs), list(xs)
        up[k] += h
        down[k] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


def check_against_hand(
    loss: RankingLoss,
    scores: list[list[float]],
    targets: list[list[float]],
    hand_value: Callable[[Vector, Vector], float],
    hand_grad: Callable[[Vector, Vector], list[float]] | None = None,
) -> None:
    """The loss and its gradient equal the mean over queries of ``hand_value`` (and of ``hand_grad``, else of the
    numeric gradient of ``hand_value``)."""
    s = torch.tensor(scores, dtype=torch.float64, requires_grad=True)
    value = loss(s, torch.tensor(targets, dtype=torch.float64))
    value.backward()
    q = len(scores)
    expected = sum(hand_value(si, ti) for si, ti in zip(scores, targets)) / q
    assert value.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert s.grad is not None
    for row, (si, ti) in enumerate(zip(scores, targets)):
        grad = hand_grad(si, ti) if hand_grad else numeric_grad(lambda x: hand_value(x, ti), si)
        assert s.grad[row].tolist() == pytest.approx([g / q for g in grad], rel=1e-6, abs=1e-8)


def loss_and_grad(loss: RankingLoss, scores, targets, mask=None) -> tuple[float, torch.Tensor]:
    s = torch.as_tensor(scores, dtype=torch.float64).clone().requires_grad_(True)
    t = torch.as_tensor(targets, dtype=torch.float64)
    m = None if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    value = loss(s, t, m)
    value.backward()
    assert s.grad is not None
    return value.item(), s.grad
