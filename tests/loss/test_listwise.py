import math

import pytest
import torch
import torch.nn.functional as F

from boltir.errors import ConfigError
from boltir.loss import (
    ApproxDiscountedRankMSELoss,
    ApproxMRRLoss,
    ApproxNDCGLoss,
    InfoNCELoss,
    KLDivergenceLoss,
    ListNetLoss,
)
from boltir.loss.listwise import approx_ranks, target_ranks

from .helpers import check_against_hand, loss_and_grad, sigmoid, softmax

SCORES = [[2.0, 0.5, 1.0, -1.0], [0.3, 0.9, -0.2, 0.0]]
GRADED = [[3.0, 0.0, 2.0, 1.0], [1.0, 0.0, 0.0, 2.0]]


def hand_approx_ranks(s, temperature):
    return [1 + sum(sigmoid((s[j] - s[i]) / temperature) for j in range(len(s)) if j != i) for i in range(len(s))]


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_infonce_matches_hand_computation(temperature):
    def value(s, t):
        p = softmax([x / temperature for x in s])
        return -math.log(sum(pk for pk, tk in zip(p, t) if tk > 0))

    def grad(s, t):
        p = softmax([x / temperature for x in s])
        positive_mass = sum(pk for pk, tk in zip(p, t) if tk > 0)
        return [(pk - (pk / positive_mass if tk > 0 else 0.0)) / temperature for pk, tk in zip(p, t)]

    targets = [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]  # two positives, then one
    check_against_hand(InfoNCELoss(temperature), SCORES, targets, value, grad)


def test_infonce_with_one_positive_is_cross_entropy():
    scores = torch.tensor([[2.0, 0.5, 1.0], [0.1, 0.2, 0.3]], dtype=torch.float64)
    targets = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    expected = F.cross_entropy(scores / 0.1, torch.tensor([1, 2]))
    assert InfoNCELoss(0.1)(scores, targets).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kl_divergence_matches_hand_computation(temperature):
    def value(s, t):
        p, q = softmax([x / temperature for x in t]), softmax([x / temperature for x in s])
        return sum(pk * math.log(pk / qk) for pk, qk in zip(p, q))

    def grad(s, t):
        p, q = softmax([x / temperature for x in t]), softmax([x / temperature for x in s])
        return [(qk - pk) / temperature for pk, qk in zip(p, q)]

    check_against_hand(KLDivergenceLoss(temperature), SCORES, GRADED, value, grad)


def test_listnet_matches_hand_computation():
    def value(s, t):
        p, q = softmax(t), softmax(s)
        return -sum(pk * math.log(qk) for pk, qk in zip(p, q))

    def grad(s, t):
        p, q = softmax(t), softmax(s)
        return [qk - pk for pk, qk in zip(p, q)]

    check_against_hand(ListNetLoss(), SCORES, GRADED, value, grad)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_approx_ndcg_matches_hand_computation(temperature):
    def value(s, t):
        ranks = hand_approx_ranks(s, temperature)
        gains = [2**tk - 1 for tk in t]
        dcg = sum(g / math.log2(1 + r) for g, r in zip(gains, ranks))
        ideal = sum(g / math.log2(1 + k) for k, g in enumerate(sorted(gains, reverse=True), start=1))
        return 1 - dcg / ideal

    check_against_hand(ApproxNDCGLoss(temperature), SCORES, GRADED, value)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_approx_mrr_matches_hand_computation(temperature):
    def value(s, t):
        ranks = hand_approx_ranks(s, temperature)
        return 1 - max(1 / r for r, tk in zip(ranks, t) if tk > 0)

    check_against_hand(ApproxMRRLoss(temperature), SCORES, GRADED, value)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_approx_discounted_rank_mse_matches_hand_computation(temperature):
    # By hand from GRADED: highest target = rank 1; the two tied zeros of the second query share (3 + 4) / 2.
    teacher_ranks = {tuple(GRADED[0]): [1, 4, 2, 3], tuple(GRADED[1]): [2, 3.5, 3.5, 1]}

    def value(s, t):
        teacher = teacher_ranks[tuple(t)]
        ranks = hand_approx_ranks(s, temperature)
        return sum((r - rt) ** 2 / math.log2(rt + 1) for r, rt in zip(ranks, teacher)) / len(s)

    check_against_hand(ApproxDiscountedRankMSELoss(temperature), SCORES, GRADED, value)


def test_target_ranks_share_the_mean_rank_on_ties():
    ranks = target_ranks(torch.tensor([[2.0, 1.0, 1.0, 0.0, 1.0]]), torch.ones(1, 5, dtype=torch.bool))
    assert ranks.tolist() == [[1.0, 3.0, 3.0, 5.0, 3.0]]


def test_approx_ranks_of_tied_scores_equal_their_mean_rank():
    ranks = approx_ranks(torch.tensor([[0.0, 0.0, 0.0]]), torch.ones(1, 3, dtype=torch.bool), 1.0)
    assert ranks.tolist() == [[2.0, 2.0, 2.0]]
    value, _ = loss_and_grad(ApproxDiscountedRankMSELoss(), [[5.0, 5.0, 5.0]], [[1.0, 1.0, 1.0]])
    assert value == 0.0


@pytest.mark.parametrize("loss", [InfoNCELoss(), ApproxNDCGLoss(), ApproxMRRLoss()])
def test_relevance_losses_give_zero_without_positives(loss):
    value, grad = loss_and_grad(loss, [[3.0, -2.0, 0.5], [1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    only_second, _ = loss_and_grad(loss, [[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]])
    assert value == pytest.approx(only_second / 2)
    assert grad[0].tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(grad).all()


def test_distribution_losses_read_all_zero_targets_as_uniform():
    scores = [[1.0, 0.0, -1.0]]
    q = softmax(scores[0])
    listnet, _ = loss_and_grad(ListNetLoss(), scores, [[0.0, 0.0, 0.0]])
    kl, _ = loss_and_grad(KLDivergenceLoss(), scores, [[0.0, 0.0, 0.0]])
    assert listnet == pytest.approx(-sum(math.log(qk) for qk in q) / 3)
    assert kl == pytest.approx(sum(math.log((1 / 3) / qk) for qk in q) / 3)


def test_single_positive_approx_mrr_is_one_minus_reciprocal_rank():
    value, _ = loss_and_grad(ApproxMRRLoss(), [[0.0, 0.0]], [[0.0, 1.0]])
    assert value == pytest.approx(1 - 1 / 1.5)


@pytest.mark.parametrize(
    "cls", [InfoNCELoss, KLDivergenceLoss, ApproxNDCGLoss, ApproxMRRLoss, ApproxDiscountedRankMSELoss]
)
@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), "warm"])
def test_temperature_must_be_positive(cls, temperature):
    with pytest.raises(ConfigError, match="temperature"):
        cls(temperature)
