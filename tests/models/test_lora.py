"""LoRA on every family (models/layers/lora.py): only adapters and the family's own layers train, and a saved
model has the adapters merged, so it loads and scores the same without peft."""

from __future__ import annotations

import sys

import pytest
import torch

from boltir import ConfigError
from boltir.models import load_model
from boltir.modules import BiEncoderModule, ColBERTModule, CrossEncoderModule, SpladeModule

QUERIES = ["capital of germany", "what causes the ocean tide"]
DOCS = [["berlin is the capital of germany", "the moon causes the ocean tide"],
        ["the moon causes the ocean tide", "paris is the capital of france"]]
FAMILIES = {  # module class, backbone fixture, options
    "bi-encoder": (BiEncoderModule, "tiny_bert_dir", {"embedding_dim": 8}),
    "colbert": (ColBERTModule, "tiny_bert_dir", {"embedding_dim": 8}),
    "splade": (SpladeModule, "tiny_bert_mlm_dir", {}),
    "cross-encoder": (CrossEncoderModule, "tiny_bert_dir", {}),
    "cross-encoder-pooler": (CrossEncoderModule, "tiny_bert_dir", {"pooling": "pooler"}),
}


def _trainable(module) -> dict[str, int]:
    return {n: p.numel() for n, p in module.named_parameters() if p.requires_grad}


def _scores(module) -> torch.Tensor:
    return torch.stack(module.score(QUERIES, DOCS).scores)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_trains_fewer_parameters_and_saves_merged_weights_that_load_without_peft(family, request, tmp_path, monkeypatch):
    module_class, fixture, options = FAMILIES[family]
    directory = request.getfixturevalue(fixture)
    full = module_class(directory, config_overrides=options)
    lora = module_class(directory, config_overrides={**options, "lora_r": 4, "lora_alpha": 8})
    trained, everything = _trainable(lora), _trainable(full)
    assert 0 < sum(trained.values()) < sum(everything.values()) / 4
    # the backbone trains through its adapters only; the family's own layers (projection, head) train as before
    assert all("lora_" in n or not n.startswith("model.backbone.") for n in trained)
    assert {n for n in trained if not n.startswith("model.backbone.")} == {n for n in everything if not n.startswith("model.backbone.")}
    assert any("pooler" in n for n in trained) == (options.get("pooling") == "pooler")  # a frozen pooler gets none

    lora.train()
    torch.stack(lora.rank_scores(QUERIES, DOCS)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)
    with torch.no_grad():  # as after training: adapters that change the scores
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    expected = _scores(lora)
    assert not torch.allclose(expected, _scores(full), atol=1e-3)

    lora.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved" / "adapter_config.json").exists()
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now fails: the saved model must not need it
    reloaded = load_model(tmp_path / "saved")
    assert reloaded.config.lora_r == 0
    torch.testing.assert_close(_scores(module_class(model=reloaded)), expected, atol=1e-5, rtol=1e-4)


def test_lora_options_are_checked(tiny_bert_dir):
    with pytest.raises(ConfigError, match="lora_r"):
        BiEncoderModule(tiny_bert_dir, config_overrides={"lora_r": -1})
    with pytest.raises(ConfigError, match="lora_dropout"):
        CrossEncoderModule(tiny_bert_dir, config_overrides={"lora_r": 4, "lora_dropout": 1.5})
    with pytest.raises(ConfigError, match="lora_target_modules"):
        BiEncoderModule(tiny_bert_dir, config_overrides={"lora_r": 4, "lora_target_modules": ["no_such_layer"]})


def test_lora_on_named_modules_only(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir, config_overrides={"lora_r": 2, "lora_target_modules": ["query", "value"]})
    wrapped = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in _trainable(module)}
    assert wrapped == {"query", "value"}
