"""Invariants every ranking loss should keep, checked on random lists with hypothesis."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir.loss import LOSSES, HingeLoss, RankingLoss, build_loss

SETTINGS = settings(max_examples=50, deadline=None)
ALL = {name: build_loss(name) for name in LOSSES}
# Losses for which a ranking that sorts entries like their targets is the best ordering of a fixed set of scores.
RANKING = [
    "ranknet", "hinge", "approx_ndcg", "approx_mrr", "approx_discounted_rank_mse", "listnet", "infonce", "kl_divergence",
    "approx_rank_mse", "pearson",
]
GAP = 30.0  # sigmoid(-30) ~ 1e-13: approximate ranks are then exact ranks

labels = st.lists(st.integers(0, 3).map(float), min_size=1, max_size=7)


@st.composite
def batches(draw):
    """Scores, graded targets in [0, 1] (so BCE fits too) and a mask, [queries, list_size]."""
    queries, size = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    cells = queries * size
    scores = draw(st.lists(st.floats(-5, 5), min_size=cells, max_size=cells))
    targets = draw(st.lists(st.sampled_from([0.0, 1 / 3, 2 / 3, 1.0]), min_size=cells, max_size=cells))
    mask = draw(st.lists(st.booleans(), min_size=cells, max_size=cells))
    return (
        torch.tensor(scores, dtype=torch.float64).view(queries, size),
        torch.tensor(targets, dtype=torch.float64).view(queries, size),
        torch.tensor(mask).view(queries, size),
    )


def perfect_scores(targets: list[float], break_ties: bool = False) -> list[float]:
    """Scores ordered like the targets with large gaps; tied targets get tied scores unless ``break_ties``."""
    if break_ties:
        order = sorted(range(len(targets)), key=lambda k: targets[k])
        return [GAP * order.index(k) for k in range(len(targets))]
    levels = sorted(set(targets))
    return [GAP * levels.index(t) for t in targets]


@pytest.mark.parametrize("name", RANKING)
@SETTINGS
@given(data=st.data())
def test_perfect_ranking_is_no_worse_than_any_permutation(name, data):
    targets = data.draw(labels)
    perm = data.draw(st.permutations(range(len(targets))))
    best = perfect_scores(targets)
    loss = ALL[name]
    t = torch.tensor([targets], dtype=torch.float64)
    perfect = loss(torch.tensor([best], dtype=torch.float64), t).item()
    permuted = loss(torch.tensor([[best[k] for k in perm]], dtype=torch.float64), t).item()
    assert perfect <= permuted + 1e-9


@pytest.mark.parametrize("name", ["ranknet", "hinge", "approx_ndcg", "approx_mrr", "infonce"])
@SETTINGS
@given(targets=labels)
def test_perfect_ranking_costs_nothing(name, targets):
    # Tied targets get distinct scores: two positives tied in score each sit at rank 1.5, which MRR and NDCG count.
    scores = perfect_scores(targets, break_ties=True)
    loss = ALL[name]
    value = loss(torch.tensor([scores], dtype=torch.float64), torch.tensor([targets], dtype=torch.float64))
    assert value.item() == pytest.approx(0.0, abs=1e-9)


@SETTINGS
@given(targets=labels)
def test_copying_the_teacher_costs_nothing(targets):
    t = torch.tensor([targets], dtype=torch.float64)
    # Rank-DistiLLM's loss compares ranks: tied teacher scores want tied student scores (mean ranks).
    assert ALL["approx_discounted_rank_mse"](t * GAP, t).item() == pytest.approx(0.0, abs=1e-9)
    assert ALL["margin_mse"](t, t).item() == 0.0


@pytest.mark.parametrize("name", list(ALL))
@SETTINGS
@given(batch=batches())
def test_losses_are_non_negative(name, batch):
    assert ALL[name](*batch).item() >= -1e-12


@pytest.mark.parametrize("name", list(ALL))
@SETTINGS
@given(batch=batches(), data=st.data())
def test_permuting_a_list_changes_nothing(name, batch, data):
    scores, targets, mask = batch
    perm = torch.tensor(data.draw(st.permutations(range(scores.shape[1]))), dtype=torch.long)
    loss: RankingLoss = ALL[name]

    s = scores.clone().requires_grad_(True)
    value = loss(s, targets, mask)
    value.backward()
    s_perm = scores[:, perm].clone().requires_grad_(True)
    value_perm = loss(s_perm, targets[:, perm], mask[:, perm])
    value_perm.backward()

    assert value_perm.item() == pytest.approx(value.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(s_perm.grad, s.grad[:, perm], rtol=1e-7, atol=1e-10)
    assert torch.isfinite(s.grad).all()


@SETTINGS
@given(margin=st.floats(0, 3), batch=batches())
def test_hinge_is_non_negative_for_any_margin(margin, batch):
    assert HingeLoss(margin)(*batch).item() >= 0.0
