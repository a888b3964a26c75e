"""backend="auto" (the default): CPU inference runs on ONNX Runtime from a cached export, with PyTorch's results."""

from __future__ import annotations

import pytest
import torch

from boltir import BiEncoderModule, ColBERTModule, CrossEncoderModule, DataModule, DocDataset, Trainer
from boltir.errors import ConfigError
from boltir.models import onnx_cache
from boltir.models.onnx_backbone import OnnxBackbone

TEXTS = ["the capital of germany is berlin", "tide", "what causes the ocean tide in the sea, and how high does the water rise",
         "neural ranking models learn to rank documents for a query"]


def runtime(module):
    """The model the module's inference runs (inference is what runs without gradients)."""
    with torch.inference_mode():
        return module.runtime_model()


@pytest.fixture
def auto(monkeypatch, tmp_path):
    """The default as users get it (the suite's conftest sets BOLTIR_BACKEND=torch), with a cache of its own;
    yields the list of backbones exported."""
    monkeypatch.setenv("BOLTIR_BACKEND", "auto")
    monkeypatch.setenv("BOLTIR_CACHE", str(tmp_path / "cache"))
    exported: list[str] = []
    real = onnx_cache.export_backbone

    def counting(model, name, path):
        exported.append(name)
        real(model, name, path)

    monkeypatch.setattr(onnx_cache, "export_backbone", counting)
    return exported


def test_bi_encoder_on_cpu_runs_onnx_with_pytorch_vectors(tiny_bert_dir, auto, capsys):
    module = BiEncoderModule(tiny_bert_dir)
    reference = BiEncoderModule(tiny_bert_dir, backend="torch")
    got = module.encode_docs(TEXTS)
    assert isinstance(runtime(module).backbone, OnnxBackbone)
    assert "runs on ONNX Runtime" in capsys.readouterr().err
    assert torch.allclose(got, reference.encode_docs(TEXTS), atol=1e-4)
    assert torch.allclose(module.encode_queries(TEXTS[:1]), reference.encode_queries(TEXTS[:1]), atol=1e-4)
    assert auto == ["backbone"]
    assert runtime(reference) is reference.model  # backend="torch" keeps PyTorch
    assert not any(isinstance(m, OnnxBackbone) for m in module.modules())  # the copy is no submodule
    assert set(module.state_dict()) == set(reference.state_dict())


def test_cross_encoder_re_ranks_on_onnx_with_pytorch_scores(tiny_bert_dir, auto):
    module = CrossEncoderModule(tiny_bert_dir)
    reference = CrossEncoderModule(model=module.model, backend="torch")  # the same (randomly initialised) head
    docs = [TEXTS, TEXTS[:1]]
    for got, expected in zip(module.score(["q", "ocean tide"], docs).scores, reference.score(["q", "ocean tide"], docs).scores):
        assert torch.allclose(got, expected, atol=1e-4)
    assert isinstance(runtime(module).backbone, OnnxBackbone)


def test_the_export_is_cached_by_weights_and_redone_when_they_change(tiny_bert_dir, auto, tmp_path, capsys):
    first = BiEncoderModule(tiny_bert_dir)
    first.encode_docs(TEXTS)
    second = BiEncoderModule(tiny_bert_dir)  # a new load of the same directory: reuses the export
    second.encode_docs(TEXTS)
    assert auto == ["backbone"]
    assert capsys.readouterr().err.count("runs on ONNX Runtime") == 1
    with torch.no_grad():  # a changed model directory: other weights, another export
        second.model.backbone.embeddings.word_embeddings.weight.mul_(2.0)
    second.save_pretrained(tmp_path / "changed")
    changed = BiEncoderModule(tmp_path / "changed")
    assert torch.allclose(changed.encode_docs(TEXTS), BiEncoderModule(tmp_path / "changed", backend="torch").encode_docs(TEXTS), atol=1e-4)
    assert auto == ["backbone", "backbone"]
    # weights changed in place after a first use (as an optimizer step does) are seen too
    assert torch.allclose(second.encode_docs(TEXTS), changed.encode_docs(TEXTS), atol=1e-4)
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 2


def test_training_gradients_and_torch_setting_stay_on_pytorch(tiny_bert_dir, auto, monkeypatch):
    module = BiEncoderModule(tiny_bert_dir)
    module.train()
    assert runtime(module) is module.model
    module.eval()
    vectors = module.embed_docs(TEXTS)  # outside inference mode: gradients flow, through PyTorch
    assert vectors.requires_grad and module.runtime_model() is module.model
    monkeypatch.setenv("BOLTIR_BACKEND", "torch")
    plain = BiEncoderModule(tiny_bert_dir)
    plain.encode_docs(TEXTS)
    assert runtime(plain) is plain.model and auto == []
    monkeypatch.setenv("BOLTIR_BACKEND", "onnx")
    with pytest.raises(ConfigError, match="BOLTIR_BACKEND=onnx"):
        BiEncoderModule(tiny_bert_dir)


def test_families_that_do_not_export_fall_back_to_pytorch(tiny_bert_dir, auto):
    colbert = ColBERTModule(tiny_bert_dir)
    vectors = colbert.encode_docs(TEXTS)
    assert runtime(colbert) is colbert.model
    assert torch.equal(vectors.vectors, ColBERTModule(model=colbert.model, backend="torch").encode_docs(TEXTS).vectors)
    set_encoder = CrossEncoderModule(tiny_bert_dir, config_overrides={"attention": "set"})
    set_encoder.score("q", TEXTS)
    assert runtime(set_encoder) is set_encoder.model
    assert auto == []


def test_trainer_index_on_cpu_uses_the_onnx_copy(tiny_bert_dir, tiny_beir, auto, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    Trainer(logger=False, enable_progress_bar=False).index(module, DataModule(DocDataset(tiny_beir)), tmp_path / "index")
    assert auto == ["backbone"]
