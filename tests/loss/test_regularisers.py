import pytest
import torch

from boltir.errors import ConfigError
from boltir.loss import FLOPSRegulariser, L1Regulariser

EMBEDDINGS = [[1.0, -2.0, 0.0], [3.0, 0.0, 0.0]]


def test_flops_matches_hand_computation():
    w = torch.tensor(EMBEDDINGS, requires_grad=True)
    value = FLOPSRegulariser(weight=1.0)(w)
    value.backward()
    # mean |w| per term: [2, 1, 0] -> 2**2 + 1**2 + 0**2; d/dw_ij = 2 * mean_j * sign(w_ij) / batch
    assert value.item() == 5.0
    assert w.grad.tolist() == [[2.0, -1.0, 0.0], [2.0, 0.0, 0.0]]


def test_l1_matches_hand_computation():
    w = torch.tensor(EMBEDDINGS, requires_grad=True)
    value = L1Regulariser(weight=1.0)(w)
    value.backward()
    # row sums of |w|: [3, 3] -> mean 3; d/dw_ij = sign(w_ij) / batch
    assert value.item() == 3.0
    assert w.grad.tolist() == [[0.5, -0.5, 0.0], [0.5, 0.0, 0.0]]


def test_forward_is_unweighted():
    w = torch.tensor(EMBEDDINGS)
    assert FLOPSRegulariser(weight=0.1)(w).item() == FLOPSRegulariser(weight=5.0)(w).item()


@pytest.mark.parametrize("cls", [FLOPSRegulariser, L1Regulariser])
def test_weight_ramps_up_quadratically(cls):
    regulariser = cls(weight=2.0, warmup_steps=10)
    assert [regulariser.weight_at(step) for step in (0, 5, 10, 20)] == [0.0, 0.5, 2.0, 2.0]
    assert regulariser.weight_at(1) == pytest.approx(2.0 * (1 / 10) ** 2)
    assert cls(weight=2.0).weight_at(0) == 2.0


@pytest.mark.parametrize("cls", [FLOPSRegulariser, L1Regulariser])
def test_empty_batch_gives_zero(cls):
    assert cls(weight=1.0)(torch.zeros(0, 5)).item() == 0.0


@pytest.mark.parametrize("cls", [FLOPSRegulariser, L1Regulariser])
def test_bad_settings_and_shapes_raise_config_error(cls):
    with pytest.raises(ConfigError, match="weight"):
        cls(weight=-1.0)
    with pytest.raises(ConfigError, match="warmup_steps"):
        cls(weight=1.0, warmup_steps=-1)
    with pytest.raises(ConfigError, match="warmup_steps"):
        cls(weight=1.0, warmup_steps=2.5)
    with pytest.raises(ConfigError, match=r"\[batch, vocab\].*\(2, 3, 4\)"):
        cls(weight=1.0)(torch.zeros(2, 3, 4))
