import pytest
import torch

from boltir.errors import ConfigError
from boltir.loss import (
    LOSSES,
    ApproxDiscountedRankMSELoss,
    HingeLoss,
    InfoNCELoss,
    RankingLoss,
    RankNetLoss,
    WeightedLoss,
    build_loss,
)

SCORES = torch.tensor([[2.0, 0.5, 1.0, -1.0], [0.3, 0.9, -0.2, 0.0]], dtype=torch.float64)
TARGETS = torch.tensor([[3.0, 0.0, 2.0, 1.0], [1.0, 0.0, 0.0, 2.0]], dtype=torch.float64)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_name_builds_its_loss(name):
    assert type(build_loss(name)) is LOSSES[name]
    assert type(build_loss({"name": name})) is LOSSES[name]


def test_names_the_brief_promises():
    assert isinstance(build_loss("ranknet"), RankNetLoss)
    assert isinstance(build_loss("approx_discounted_rank_mse"), ApproxDiscountedRankMSELoss)
    assert isinstance(build_loss("infonce"), InfoNCELoss)


def test_mapping_passes_options():
    loss = build_loss({"name": "infonce", "temperature": 0.05})
    assert isinstance(loss, InfoNCELoss) and loss.temperature == 0.05
    assert build_loss({"name": "hinge", "margin": 0.3}).margin == 0.3


def test_instances_pass_through():
    loss = HingeLoss(0.2)
    assert build_loss(loss) is loss


def test_list_builds_weighted_sum():
    loss = build_loss([{"name": "ranknet", "weight": 0.5}, "infonce", ({"name": "hinge", "margin": 2.0}, 3.0)])
    assert isinstance(loss, WeightedLoss)
    expected = (
        0.5 * RankNetLoss()(SCORES, TARGETS) + InfoNCELoss()(SCORES, TARGETS) + 3.0 * HingeLoss(2.0)(SCORES, TARGETS)
    )
    assert loss(SCORES, TARGETS).item() == pytest.approx(expected.item())


def test_list_accepts_instances_and_weighted_mapping():
    loss = build_loss([RankNetLoss(), {"name": "mse", "weight": 2.0}])
    assert loss.weights == [1.0, 2.0]
    single = build_loss({"name": "ranknet", "weight": 0.25})
    assert single(SCORES, TARGETS).item() == pytest.approx(0.25 * RankNetLoss()(SCORES, TARGETS).item())


def test_weighted_loss_gradient_is_the_weighted_sum():
    s1, s2 = SCORES.clone().requires_grad_(True), SCORES.clone().requires_grad_(True)
    WeightedLoss([(RankNetLoss(), 2.0), (InfoNCELoss(), -1.0)])(s1, TARGETS).backward()
    (2.0 * RankNetLoss()(s2, TARGETS) - InfoNCELoss()(s2, TARGETS)).backward()
    assert torch.allclose(s1.grad, s2.grad)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ConfigError, match="'rank_net'") as error:
        build_loss("rank_net")
    for name in LOSSES:
        assert name in str(error.value)
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        build_loss([{"name": "ranknet"}, {"name": "nope", "weight": 1.0}])


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="'temprature'.*'infonce'.*temperature"):
        build_loss({"name": "infonce", "temprature": 0.1})
    with pytest.raises(ConfigError, match="'margin'.*'ranknet'.*none"):
        build_loss({"name": "ranknet", "margin": 1.0})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"temperature": 1.0}, "needs a 'name'"),
        ([], "at least one"),
        (42, "got int"),
        ([42], "got int"),
        ([("ranknet", 1.0, 2.0)], r"\(loss, weight\)"),
        ({"name": "infonce", "temperature": 0}, "temperature must be > 0"),
        ({"name": "ranknet", "weight": "heavy"}, "weight must be a number"),
    ],
)
def test_bad_specs_raise_config_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(spec)


def test_weighted_loss_checks_its_parts():
    with pytest.raises(ConfigError, match="at least one"):
        WeightedLoss([])
    with pytest.raises(ConfigError, match="RankingLoss instances"):
        WeightedLoss([(torch.nn.MSELoss(), 1.0)])  # type: ignore[list-item]


@pytest.mark.parametrize("loss", [build_loss(name) for name in LOSSES], ids=list(LOSSES))
def test_shape_mismatch_raises_config_error_naming_both_shapes(loss: RankingLoss):
    with pytest.raises(ConfigError, match=r"targets.*expected \(2, 4\), got \(2, 3\)"):
        loss(SCORES, TARGETS[:, :3])
    with pytest.raises(ConfigError, match=r"mask.*expected \(2, 4\), got \(2, 5\)"):
        loss(SCORES, TARGETS, torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ConfigError, match="bool"):
        loss(SCORES, TARGETS, torch.ones(2, 4))
    with pytest.raises(ConfigError, match=r"\[num_queries, list_size\].*\(4,\)"):
        loss(SCORES[0], TARGETS[0])
    with pytest.raises(ConfigError, match="float"):
        loss(SCORES.long(), TARGETS)
    assert issubclass(ConfigError, ValueError)


def test_integer_labels_are_accepted():
    assert RankNetLoss()(SCORES, TARGETS.long()).item() == pytest.approx(RankNetLoss()(SCORES, TARGETS).item())
