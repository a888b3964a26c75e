"""The effectiveness entry points (parity_scifact, finetune_minilm) end to end on a tiny random BERT and a tiny
BEIR folder: every stage runs, and the JSON / table RESULTS.md rows come from are complete and consistent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import finetune_minilm, parity_scifact

ROOT = Path(__file__).resolve().parents[2]


def test_parity_of_boltir_and_sentence_transformers(tiny_bert_dir, tiny_beir, quiet_temp, monkeypatch, capsys):
    out = quiet_temp / "out"
    monkeypatch.setattr(sys, "argv", ["parity_scifact", "--model", str(tiny_bert_dir), "--data", str(tiny_beir),
                                      "--batch-size", "4", "--cpu-precisions", "bf16", "--tolerance", "0.002",
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as done:
        parity_scifact.main()
    result = json.loads((out / "parity.json").read_text())
    assert [(r["system"], r["precision"]) for r in result["runs"]] == [
        ("sentence-transformers encode + exact (cpu)", "fp32"), ("boltir index + search (cpu)", "fp32"),
        ("boltir index + search (cpu)", "bf16")]
    reference = result["reference_ndcg@10"]
    assert 0 < reference <= 1 and result["runs"][0]["ndcg@10"] == reference
    assert all(0 <= r["ndcg@10"] <= 1 and r["encode_s"] > 0 for r in result["runs"])
    # the same fp32 weights, pooling and cosine: boltir ranks as sentence-transformers does
    assert result["runs"][1]["ndcg@10"] == pytest.approx(reference, abs=1e-6)
    worst = max(abs(r["ndcg@10"] - reference) for r in result["runs"])
    assert result["max_abs_difference"] == pytest.approx(worst)
    assert done.value.code == (0 if result["within_tolerance"] else 1) and result["within_tolerance"] == (worst <= 0.002)
    assert ("PASS" if result["within_tolerance"] else "FAIL") in capsys.readouterr().out
    assert result["meta"]["command"].startswith("python -m benchmarks.parity_scifact --model")


def _finetune(args: list[str], data: Path, model: Path, out: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["finetune_minilm", "--data", str(data), "--model", str(model), "--device", "cpu",
                                      "--config", str(ROOT / "configs" / "scifact-minilm-fit.yaml"), "--batch-size", "4",
                                      "--max-steps", "2", "--out", str(out), *args])
    finetune_minilm.main()


MEASURES = ("nDCG@10", "RR@10", "R@100")


def test_finetune_minilm_zero_shot_then_fine_tuned(tiny_bert_dir, tiny_train_beir, quiet_temp, monkeypatch):
    out = quiet_temp / "out"
    _finetune(["--max-docs", "4", "--max-queries", "2"], tiny_train_beir, tiny_bert_dir, out, monkeypatch)
    result = json.loads((out / "finetune_minilm.json").read_text())
    zero, tuned = result["zero_shot"]["test"], result["fine_tuned"]["test"]
    assert all(0 <= stage[m] <= 1 for stage in (zero, tuned) for m in MEASURES)
    assert result["delta_ndcg10"] == pytest.approx(tuned["nDCG@10"] - zero["nDCG@10"])
    assert result["fit"]["steps"] == 2 and result["test_queries"] == 2
    assert result["slice"] == {"max_docs": 4, "max_queries": 2}
    assert str(tiny_bert_dir) in result["fit"]["config"] and "../shared/data/scifact" not in result["fit"]["config"]
    table = (out / "finetune_minilm.md").read_text()
    assert "| all-MiniLM-L6-v2 zero-shot |" in table and "| fine-tuned on SciFact train |" in table
    assert f"{result['delta_ndcg10']:+.4f}" in table and "Data slice" in table


def test_finetune_minilm_lora_against_full(tiny_bert_dir, tiny_train_beir, quiet_temp, monkeypatch):
    out = quiet_temp / "out"
    _finetune(["--lora-r", "0", "2", "--lora-alpha", "4", "--index", "torch", "--no-validation"], tiny_train_beir,
              tiny_bert_dir, out, monkeypatch)
    result = json.loads((out / "finetune_minilm_lora.json").read_text())
    full, lora = result["arms"]
    assert (full["lora_r"], lora["lora_r"], lora["lora_alpha"]) == (0, 2, 4)
    assert 0 < lora["trained_params"] < lora["total_params"] and lora["trained_params"] < full["trained_params"]
    assert lora["total_params"] > full["total_params"] >= full["trained_params"]  # the adapters come on top
    assert all(arm["fit"]["steps"] == 2 and all(0 <= arm["test"][m] <= 1 for m in MEASURES) for arm in result["arms"])
    assert "--trainer.limit_val_batches" in lora["fit"]["args"] and result["index"] == "torch"
    table = (out / "finetune_minilm_lora.md").read_text()
    assert "| full fine-tuning |" in table and f"| LoRA r=2, alpha={lora['lora_alpha']} |" in table
    assert f"{lora['trained_params']:,} of {lora['total_params']:,}" in table
