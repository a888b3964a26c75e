import pytest
import torch
import torch.nn.functional as F

from boltir.errors import ConfigError
from boltir.loss import InfoNCELoss, in_batch_scores

QUERIES = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=torch.float64)
DOCS = torch.tensor(  # 3 documents per query, the first of each group its positive
    [[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 2.0], [2.0, 0.0], [1.0, -1.0]], dtype=torch.float64
)


def test_scores_are_every_query_against_every_document():
    scores, targets = in_batch_scores(QUERIES, DOCS, docs_per_query=3)
    assert torch.equal(scores, QUERIES @ DOCS.T)
    assert targets.tolist() == [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]]


def test_custom_similarity():
    cosine = lambda q, d: F.normalize(q, dim=-1) @ F.normalize(d, dim=-1).T  # noqa: E731
    scores, _ = in_batch_scores(QUERIES, DOCS, docs_per_query=3, similarity=cosine)
    assert scores[0, 0].item() == pytest.approx(2**-0.5)


def test_in_batch_cross_entropy_is_cross_entropy_towards_each_positive():
    queries = QUERIES.clone().requires_grad_(True)
    value = InfoNCELoss(temperature=0.5)(*in_batch_scores(queries, DOCS, docs_per_query=3))
    expected = F.cross_entropy(QUERIES @ DOCS.T / 0.5, torch.tensor([0, 3]))
    assert value.item() == pytest.approx(expected.item())
    value.backward()
    assert torch.isfinite(queries.grad).all()


def test_mismatched_shapes_raise_config_error():
    with pytest.raises(ConfigError, match=r"expected \(4, 2\), got \(6, 2\)"):
        in_batch_scores(QUERIES, DOCS, docs_per_query=2)
    with pytest.raises(ConfigError, match="2-D"):
        in_batch_scores(QUERIES[0], DOCS, docs_per_query=3)
