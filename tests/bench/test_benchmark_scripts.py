"""The cross-encoder benchmark scripts run end to end on tiny settings (their GPU runs use the same code)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [script, *args])
    runpy.run_path(str(BENCHMARKS / script), run_name="__main__")


def test_cross_encoder_scifact_on_a_tiny_collection(tiny_bert_dir, tiny_train_beir, tmp_path, monkeypatch):
    args = ["--data", str(tiny_train_beir), "--base", str(tiny_bert_dir), "--zero-shot", str(tiny_bert_dir),
            "--depth", "4", "--epochs", "1", "--batch-size", "2", "--list-size", "3", "--max-length", "64",
            "--query-length", "16", "--train-run", str(tiny_train_beir / "first-stage.run"), "--out", str(tmp_path)]
    _run("cross_encoder_scifact.py", args, monkeypatch)
    results = json.loads((tmp_path / "cross_encoder_scifact.json").read_text())["results"]
    assert len(results) == 3 and all(0 <= r["nDCG@10"] <= 1 for r in results.values())
    assert (tmp_path / "cross_encoder_scifact.md").is_file()


def test_cross_encoder_scifact_trains_a_set_encoder_with_depth(tiny_bert_dir, tiny_train_beir, tmp_path, monkeypatch):
    args = ["--data", str(tiny_train_beir), "--base", str(tiny_bert_dir), "--zero-shot", "", "--attention", "set",
            "--set-depth", "6", "--depth", "4", "--epochs", "1", "--batch-size", "2", "--list-size", "3",
            "--max-length", "64", "--query-length", "16", "--train-run", str(tiny_train_beir / "first-stage.run"),
            "--out", str(tmp_path)]
    _run("cross_encoder_scifact.py", args, monkeypatch)
    results = json.loads((tmp_path / "cross_encoder_scifact_set.json").read_text())["results"]
    assert set(results) == {"BM25", "BM25 >> MiniLM-L6 Set-Encoder fine-tuned on SciFact train"}
    assert all(0 <= r["nDCG@10"] <= 1 for r in results.values())


@pytest.mark.slow
def test_sparse_attention_benchmark_measures_each_setting(tmp_path, monkeypatch):
    args = ["--lengths", "64", "--attentions", "w=4", "full-sdpa", "--hidden", "32", "--layers", "1", "--heads", "2",
            "--batch-tokens", "64", "--repeats", "1", "--threads", "1", "--out", str(tmp_path)]
    _run("sparse_attention.py", args, monkeypatch)
    rows = json.loads((tmp_path / "sparse_attention_cpu_dropout0.1.json").read_text())["rows"]
    assert [r["attention"] for r in rows] == ["w=4", "full-sdpa"] and all(r["seconds"] > 0 for r in rows)
