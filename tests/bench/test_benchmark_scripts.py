"""The cross-encoder benchmark scripts run end to end on tiny settings (their GPU runs use the same code)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


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


def test_sparse_attention_benchmark_measures_each_setting(tmp_path, monkeypatch):
    # end to end: one setting, measured in its own process (what the table's memory figures need)
    args = ["--lengths", "64", "--attentions", "w=4", "--hidden", "32", "--layers", "1", "--heads", "2",
            "--batch-tokens", "64", "--repeats", "1", "--threads", "1", "--out", str(tmp_path)]
    _run("sparse_attention.py", args, monkeypatch)
    (row,) = json.loads((tmp_path / "sparse_attention_cpu_dropout0.1.json").read_text())["rows"]
    assert row["attention"] == "w=4" and row["length"] == 64 and row["batch"] == 1 and row["seconds"] > 0
    assert "| 64 | 1 | w=4 |" in (tmp_path / "sparse_attention_cpu_dropout0.1.md").read_text()


def test_sparse_attention_table_compares_with_full_attention():
    # the worker of each setting, here in this process; the table's ratios are against the same length's full rows
    import argparse

    script = runpy.run_path(str(BENCHMARKS / "sparse_attention.py"))
    settings = dict(device="cpu", length=64, hidden=32, layers=1, heads=2, batch_tokens=128, repeats=1, threads=1,
                    attention_dropout=0.0)
    rows = [script["run_one"](argparse.Namespace(**settings, attention=a)) for a in ("w=4", "full-sdpa", "full-eager")]
    assert [(r["attention"], r["batch"]) for r in rows] == [("w=4", 2), ("full-sdpa", 2), ("full-eager", 2)]
    rows = [{**r, "peak_mb": mb} for r, mb in zip(rows, (10.0, 40.0, 80.0))]  # ru_maxrss is per process: set here
    lines = script["table"](rows).splitlines()
    assert lines[2].startswith("| 64 | 2 | w=4 | 10 | 25% | 12% |") and "| full-eager | 80 | 200% | 100% |" in lines[4]


def test_cli_startup_times_each_command(capsys, monkeypatch):
    _run("cli_startup.py", ["--repeats", "1"], monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["command", "median", "s", "min", "s", "max", "s"]
    rows = {line[:22].strip(): [float(x) for x in line[22:].split()] for line in lines[1:]}
    assert set(rows) == {"boltir --help", "boltir index --help"}
    assert all(0 < low <= median <= high for median, low, high in rows.values())
