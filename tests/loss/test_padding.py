"""Padded entries (mask False) change neither the value nor the gradient, whatever they hold."""

import pytest
import torch

from boltir.loss import LOSSES, HingeLoss, InfoNCELoss, RankingLoss, WeightedLoss, build_loss

ALL_LOSSES = [build_loss(name) for name in LOSSES] + [
    HingeLoss(margin=0.5),
    WeightedLoss([(InfoNCELoss(0.5), 0.3), (build_loss("approx_discounted_rank_mse"), 2.0)]),
]
IDS = [*LOSSES, "hinge_0.5", "weighted"]

# Real lists of different lengths; the empty one is a query that is all padding.
SCORES = [[2.0, 0.5, 1.0, -1.0], [0.3, -0.7], [], [1.2, 1.2, 0.1]]
TARGETS = [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0], [], [1.0, 1.0, 0.0]]
LIST_SIZE = 6


def padded_batch(leaves, targets, pad_score, pad_target):
    rows, target_rows, mask_rows = [], [], []
    for leaf, target in zip(leaves, targets):
        missing = LIST_SIZE - len(target)
        rows.append(torch.cat([leaf, torch.full((missing,), pad_score, dtype=torch.float64)]))
        target_rows.append(target + [pad_target] * missing)
        mask_rows.append([True] * len(target) + [False] * missing)
    return (
        torch.stack(rows),
        torch.tensor(target_rows, dtype=torch.float64),
        torch.tensor(mask_rows),
    )


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
@pytest.mark.parametrize(
    ("pad_score", "pad_target"), [(1e30, 1e30), (-1e30, -1e30), (float("inf"), float("nan")), (float("nan"), 5.0)]
)
def test_padding_changes_neither_value_nor_gradient(loss: RankingLoss, pad_score, pad_target):
    # Reference: each query's list alone, unpadded; a query without entries contributes 0 to the mean.
    separate = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s in SCORES]
    parts = [
        loss(s[None], torch.tensor([t], dtype=torch.float64)) if t else torch.zeros((), dtype=torch.float64)
        for s, t in zip(separate, TARGETS)
    ]
    expected = torch.stack(parts).mean()
    expected_grads = torch.autograd.grad(expected, [s for s in separate if s.numel()])

    padded = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s in SCORES]
    scores, targets, mask = padded_batch(padded, TARGETS, pad_score, pad_target)
    scores.retain_grad()
    value = loss(scores, targets, mask)
    value.backward()

    assert value.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-14)
    for leaf, grad in zip([s for s in padded if s.numel()], expected_grads):
        assert torch.allclose(leaf.grad, grad, rtol=1e-12, atol=1e-14)
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[~mask] == 0).all()


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
def test_all_padding_gives_zero(loss: RankingLoss):
    scores = torch.full((2, 3), 1e30, requires_grad=True)
    value = loss(scores, torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    value.backward()
    assert value.item() == 0.0
    assert (scores.grad == 0).all()


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=IDS)
def test_no_queries_gives_zero(loss: RankingLoss):
    assert loss(torch.zeros(0, 4), torch.zeros(0, 4)).item() == 0.0
