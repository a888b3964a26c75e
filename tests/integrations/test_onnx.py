"""ONNX export: an exported module gives PyTorch's vectors and scores (fp32, 1e-4) through its whole API."""

from __future__ import annotations

import argparse

import onnx
import pytest
import torch
from transformers import BertConfig, BertModel

from boltir import (
    BiEncoderModule,
    CrossEncoderModule,
    DataModule,
    DocDataset,
    QueryDataset,
    Run,
    RunDataset,
    SpladeModule,
    Trainer,
)
from boltir.cli import export as export_cli
from boltir.cli.main import main as boltir_main
from boltir.errors import ConfigError
from boltir.integrations.onnx import export_onnx

TEXTS = ["the capital of germany is berlin", "tide", "what causes the ocean tide in the sea, and how high does the water rise",
         "neural ranking models learn to rank documents for a query"]
QUERIES = ["capital of germany", "what causes the ocean tide"]


def trainer() -> Trainer:
    return Trainer(logger=False, enable_progress_bar=False)


def assert_same_vectors(torch_module, onnx_module) -> None:
    for batch in (TEXTS, TEXTS[:1], TEXTS * 5):  # batch and length axes both vary
        assert torch.allclose(onnx_module.encode_docs(batch), torch_module.encode_docs(batch), atol=1e-4)
        assert torch.allclose(onnx_module.encode_queries(batch), torch_module.encode_queries(batch), atol=1e-4)


@pytest.mark.parametrize("overrides", [{}, {"tied": False, "embedding_dim": 16, "normalize": True, "query_pooling": "cls"}],
                         ids=["tied", "untied-projected"])
def test_dense_bi_encoder_runs_from_its_export(tiny_bert_dir, tiny_beir, tmp_path, overrides):
    torch.manual_seed(0)
    module = BiEncoderModule(tiny_bert_dir, config_overrides=overrides)
    export_onnx(module, tmp_path / "onnx")
    exported = BiEncoderModule(tmp_path / "onnx", backend="onnx")
    assert not list(exported.model.backbone.parameters())  # the weights live in the graph
    assert_same_vectors(module, exported)
    assert torch.allclose(exported.score(QUERIES[0], TEXTS).scores, module.score(QUERIES[0], TEXTS).scores, atol=1e-4)
    runs = {}
    for name, m in (("torch", module), ("onnx", exported)):
        trainer().index(m, DataModule(DocDataset(tiny_beir)), tmp_path / f"index-{name}")
        trainer().search(m, DataModule(QueryDataset(tiny_beir)), tmp_path / f"index-{name}", k=6, run_path=tmp_path / f"{name}.run")
        runs[name] = Run.from_trec(tmp_path / f"{name}.run")
    for qid in runs["torch"]:
        assert [d for d, _ in runs["onnx"][qid]] == [d for d, _ in runs["torch"][qid]]
        assert [s for _, s in runs["onnx"][qid]] == pytest.approx([s for _, s in runs["torch"][qid]], abs=1e-4)


def test_splade_runs_from_its_export(tiny_bert_mlm_dir, tmp_path):
    module = SpladeModule(tiny_bert_mlm_dir, config_overrides={"query_expansion": False})
    export_onnx(module, tmp_path / "onnx")
    exported = SpladeModule(tmp_path / "onnx", backend="onnx")
    assert_same_vectors(module, exported)


@pytest.mark.parametrize("pooler", [False, True], ids=["cls", "pooler"])
def test_cross_encoder_re_ranks_from_its_export(tiny_bert_dir, tiny_train_beir, tmp_path, pooler):
    module = CrossEncoderModule(tiny_bert_dir)
    if pooler:  # a BERT sequence classifier's layout: the backbone's pooler feeds the head
        from boltir import CrossEncoderConfig, CrossEncoderModel

        torch.manual_seed(1)
        backbone = BertConfig(vocab_size=len(module.model.tokenizer), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64)
        model = CrossEncoderModel(BertModel(backbone), module.model.tokenizer, CrossEncoderConfig(pooling="pooler"))
        module = CrossEncoderModule(model=model)
    export_onnx(module, tmp_path / "onnx")
    exported = CrossEncoderModule(tmp_path / "onnx", backend="onnx")
    docs = [TEXTS, TEXTS[:1], TEXTS * 3]
    for expected, got in zip(module.score(QUERIES * 0 + ["q"] * 3, docs).scores, exported.score(["q"] * 3, docs).scores):
        assert torch.allclose(got, expected, atol=1e-4)
    runs = {}
    for name, m in (("torch", module), ("onnx", exported)):
        dataset = RunDataset(tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, depth=6)
        trainer().re_rank(m, DataModule(dataset), run_path=tmp_path / f"{name}.run")
        runs[name] = Run.from_trec(tmp_path / f"{name}.run")
    for qid in runs["torch"]:
        assert dict(runs["onnx"][qid]) == pytest.approx(dict(runs["torch"][qid]), abs=1e-4)


def test_int8_export_is_quantised_and_close(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    export_onnx(module, tmp_path / "fp32")
    export_onnx(module, tmp_path / "int8", quantize="int8")
    ops = {node.op_type for node in onnx.load(str(tmp_path / "int8" / "onnx" / "backbone.onnx")).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops
    size = lambda d: (d / "onnx" / "backbone.onnx").stat().st_size  # noqa: E731
    assert size(tmp_path / "int8") < size(tmp_path / "fp32")
    quantised = BiEncoderModule(tmp_path / "int8", backend="onnx")
    similarity = torch.nn.functional.cosine_similarity(quantised.encode_docs(TEXTS), module.encode_docs(TEXTS))
    assert bool((similarity > 0.98).all())


def test_cli_exports_and_refuses_what_cannot_run(tiny_bert_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    export_cli.add_arguments(parser)
    assert export_cli.run(parser.parse_args(["onnx", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "out"),
                                             "--family", "bi-encoder"])) == 0
    assert (tmp_path / "out" / "onnx" / "backbone.onnx").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # the dispatcher's one line on stderr, as for every command
        boltir_main(["export", "onnx", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("boltir: error:") and "not a saved boltir model" in err and len(err.splitlines()) == 1
    assert "error" not in captured.out
    with pytest.raises(ConfigError, match="attention='full'"):
        export_onnx(CrossEncoderModule(tiny_bert_dir, config_overrides={"attention": "set"}), tmp_path / "set")
    with pytest.raises(ConfigError, match="holds no ONNX export"):
        BiEncoderModule(tiny_bert_dir, backend="onnx")
    with pytest.raises(ConfigError, match="backend='tensorrt' does not exist"):
        BiEncoderModule(tiny_bert_dir, backend="tensorrt")
    exported = BiEncoderModule(tmp_path / "out", backend="onnx")
    with pytest.raises(ConfigError, match="inference only"):
        exported.setup("fit")
