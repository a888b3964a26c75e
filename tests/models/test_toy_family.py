"""A model family costs its folder (config + model), one registry line and one export line: a toy family defined
here with only a config, a model and its MODEL_FAMILIES entry scores, indexes and searches through the shared
module, Trainer and index engines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from boltir import BiEncoderConfig, BiEncoderModel, BiEncoderModule, DataModule, DocDataset, QueryDataset, Trainer, open_searcher
from boltir.models import MODEL_FAMILIES, load_model


@dataclass
class ToyConfig(BiEncoderConfig):
    """config.py: the family's name and its own option."""

    family: ClassVar[str] = "toy"
    similarity: str = "dot"
    scale: float = 2.0


class ToyModel(BiEncoderModel):
    """model.py: a bi-encoder whose vectors are scaled by the config's ``scale``."""

    config_class: ClassVar[type[ToyConfig]] = ToyConfig

    def encode_queries(self, encoding) -> Tensor:
        return super().encode_queries(encoding) * self.config.scale

    def encode_docs(self, encoding) -> Tensor:
        return super().encode_docs(encoding) * self.config.scale


@pytest.fixture()
def toy_dir(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(MODEL_FAMILIES, ToyConfig.family, ToyModel)  # the registry line
    ToyModel.from_pretrained(tiny_bert_dir, config=ToyConfig(scale=3.0)).save_pretrained(tmp_path / "toy")
    return tmp_path / "toy"


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)


def test_toy_family_loads_scores_indexes_and_searches(toy_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(toy_dir)  # the shared module picks the model class from the family registry
    assert type(module.model) is ToyModel and module.config.scale == 3.0
    assert type(load_model(toy_dir)) is ToyModel
    docs = list(DocDataset(tiny_beir))
    query = "what is the capital of germany"
    scores = module.score(query, [d.text for d in docs]).scores
    plain = BiEncoderModel.from_pretrained(toy_dir, config=BiEncoderConfig(similarity="dot"))
    with torch.inference_mode():
        unscaled = plain.score(*(plain.encode_queries(plain.tokenize_queries([query])), plain.encode_docs(plain.tokenize_docs([d.text for d in docs]))))[0]
    torch.testing.assert_close(scores, unscaled * 9.0, atol=1e-4, rtol=1e-4)  # scale 3 on both sides

    _trainer().index(module, DataModule(DocDataset(tiny_beir)), tmp_path / "index")
    assert open_searcher(tmp_path / "index").manifest["model"]["class"] == "ToyModel"
    callback = _trainer().search(
        BiEncoderModule(toy_dir), DataModule(QueryDataset(tiny_beir, split="test")), tmp_path / "index", k=6,
        run_dir=tmp_path / "runs",
    )
    run = next(iter(callback.runs.values()))
    expected = sorted(zip(scores.tolist(), [d.doc_id for d in docs]), key=lambda x: (-x[0], x[1]))
    assert [d for d, _ in run["q1"]] == [d for _, d in expected]
    assert [s for _, s in run["q1"]] == pytest.approx([s for s, _ in expected], rel=1e-4, abs=1e-4)
