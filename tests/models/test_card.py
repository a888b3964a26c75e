"""The model card save_pretrained writes: Hub front matter, what the model is, how it was trained, a snippet that runs."""

from __future__ import annotations

import re

import pytest
from huggingface_hub.repocard import metadata_load

from boltir import BiEncoderModule, CrossEncoderModule
from boltir.models.card import CARD_MARK, CARD_NAME, TrainingSummary, render_card
from boltir.modules.base import loss_label


def snippet(card: str) -> str:
    return re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1)


@pytest.mark.parametrize("module_class", [BiEncoderModule, CrossEncoderModule])
def test_saved_card_describes_the_model_and_its_snippet_runs(module_class, tiny_bert_dir, tmp_path, capsys):
    module_class(tiny_bert_dir).save_pretrained(tmp_path / "model")
    card = (tmp_path / "model" / CARD_NAME).read_text()
    meta = metadata_load(tmp_path / "model" / CARD_NAME)
    family = "cross-encoder" if module_class is CrossEncoderModule else "bi-encoder"
    assert meta["library_name"] == "boltir" and family in meta["tags"]
    assert meta["pipeline_tag"] == ("text-ranking" if family == "cross-encoder" else "sentence-similarity")
    assert "base_model" not in meta  # loaded from a local directory: no Hub id to name
    assert CARD_MARK in card and "Not fine-tuned" in card
    exec(snippet(card), {})  # loads the saved directory and scores with it
    assert "tensor(" in capsys.readouterr().out


def test_base_model_and_licence_come_from_the_source(minilm_dir, tmp_path):
    BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2").save_pretrained(tmp_path / "a")
    meta = metadata_load(tmp_path / "a" / CARD_NAME)
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == metadata_load(minilm_dir / "README.md")["license"]
    BiEncoderModule(tmp_path / "a").save_pretrained(tmp_path / "b")  # a re-save keeps both
    again = metadata_load(tmp_path / "b" / CARD_NAME)
    assert (again["base_model"], again["license"]) == (meta["base_model"], meta["license"])


def test_a_users_card_is_never_overwritten(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    module.save_pretrained(tmp_path / "model")
    mine = "---\nlicense: mit\n---\n# My model\nI wrote this.\n"
    (tmp_path / "model" / CARD_NAME).write_text(mine)
    module.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / CARD_NAME).read_text() == mine


def test_a_fitted_models_card_names_data_loss_steps_and_metrics(tiny_bert_dir):
    model = BiEncoderModule(tiny_bert_dir).model
    training = TrainingSummary(steps=300, epochs=2, losses=["infonce", "in-batch infonce(temperature=0.05)"],
                               datasets=["scifact"], metrics={"nDCG@10": 0.71234}, validation_datasets=["scifact-test"],
                               precision="bf16-mixed")
    card = render_card(model, "models/x", training)
    meta = metadata_load_text(card)
    assert meta["datasets"] == ["scifact"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["name"] == "scifact-test"
    assert result["metrics"][0] == {"type": "ndcg_at_10", "value": 0.7123, "name": "nDCG@10"}
    assert "300 optimiser steps (2 epoch(s)) in `bf16-mixed`" in card and "`in-batch infonce(temperature=0.05)`" in card
    assert "nDCG@10 0.7123" in card


def metadata_load_text(card: str) -> dict:
    import yaml

    return yaml.safe_load(card.split("---")[1])


def test_loss_labels():
    assert loss_label("infonce") == "infonce"
    assert loss_label({"name": "kl_divergence", "temperature": 2}) == "kl_divergence(temperature=2)"
    assert loss_label([{"name": "margin_mse", "weight": 0.5}, "infonce"]) == "0.5*margin_mse + infonce"
