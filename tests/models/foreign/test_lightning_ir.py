"""Lightning IR model directories load as they are and score as Lightning IR 0.0.6 scored them.

The fixtures are tiny random models saved by lightning-ir itself, with its scores for fixed texts; the script that
makes them (tests/fixtures/lightning_ir/make_fixtures.py) runs in lightning-ir's own venv (it needs transformers<5).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from boltir import BiEncoderModule, CrossEncoderModule
from boltir.errors import ConfigError
from boltir.models import BiEncoderModel, ColBERTModel, CrossEncoderModel, SpladeModel, load_model
from boltir.models.foreign.lightning_ir import boltir_options, family

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lightning_ir"
BI_ENCODERS = ["dpr-first-dot-projection", "dpr-mean-cosine", "dpr-max-dot-normalize", "dpr-sum-markers", "col",
               "col-aggregation", "splade", "splade-no-expansion", "splade-inference-free"]
CROSS_ENCODERS = ["mono", "mono-bert-pool", "set-encoder", "set-encoder-extra-token"]


def _expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text())


def _assert_scores(module, name: str) -> None:
    expected = _expected(name)
    for query, docs, want in zip(expected["queries"], expected["docs"], expected["scores"]):
        got = module.score(query, docs).scores.float()
        want = torch.tensor(want)
        # 1e-4 in fp32, relative where scores are large (sum pooling and dot products reach 1e4)
        assert torch.all((got - want).abs() <= 1e-4 * want.abs().clamp(min=1)), (name, got.tolist(), want.tolist())


@pytest.mark.parametrize("name", BI_ENCODERS)
def test_bi_encoder_directories_score_as_in_lightning_ir(name):
    _assert_scores(BiEncoderModule(FIXTURES / name), name)


@pytest.mark.parametrize("name", CROSS_ENCODERS)
def test_cross_encoder_directories_score_as_in_lightning_ir(name):
    _assert_scores(CrossEncoderModule(FIXTURES / name), name)


@pytest.mark.parametrize(("name", "model_class"), [
    ("dpr-mean-cosine", BiEncoderModel), ("col", ColBERTModel), ("splade", SpladeModel),
    ("mono", CrossEncoderModel), ("set-encoder", CrossEncoderModel)])
def test_load_model_recognises_each_model_type(name, model_class):
    assert type(load_model(FIXTURES / name)) is model_class
    assert family(FIXTURES / name) == model_class.config_class.family


def test_sizes_come_from_the_weights_where_the_config_drops_them():
    # the fixture asked for embedding_dim=16 but lightning-ir 0.0.6 lost it and built (and saved) its default 128
    assert "embedding_dim" not in json.loads((FIXTURES / "col" / "config.json").read_text())
    assert load_model(FIXTURES / "col").embedding_dim == 128
    assert boltir_options(FIXTURES / "dpr-sum-markers")["projection_bias"] is False


def test_lightning_ir_behaviour_is_kept_where_boltir_defaults_differ():
    splade = load_model(FIXTURES / "splade-no-expansion")
    assert splade.config.zero_special_tokens is False  # Lightning IR keeps [CLS]/[SEP] weights without expansion
    encoding = splade.tokenize_queries(["berlin"])
    vector = splade.encode_queries(encoding)[0]
    assert vector[splade.tokenizer.cls_token_id] != 0


def test_a_config_override_applies_on_top_of_the_translated_config():
    model = load_model(FIXTURES / "dpr-mean-cosine", doc_length=8)
    assert model.config.doc_length == 8 and model.config.query_pooling == "mean"


def test_a_field_boltir_cannot_reproduce_raises_naming_it(tmp_path):
    directory = tmp_path / "dpr"
    shutil.copytree(FIXTURES / "dpr-mean-cosine", directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "sparsification_strategy": "relu"}))
    with pytest.raises(ConfigError, match="sparsification_strategy"):
        load_model(directory)


def test_a_family_class_refuses_another_familys_directory():
    with pytest.raises(ConfigError, match="does not load"):
        CrossEncoderModule(FIXTURES / "col")


def test_a_loaded_directory_saves_and_reloads_as_a_boltir_model(tmp_path):
    module = BiEncoderModule(FIXTURES / "col")
    module.save_pretrained(tmp_path / "saved")
    again = BiEncoderModule(tmp_path / "saved")
    _assert_scores(again, "col")
