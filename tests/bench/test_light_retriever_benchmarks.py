"""The LightRetriever benchmark scripts run end to end in their tiny CPU settings."""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [script, *args])
    runpy.run_path(str(BENCHMARKS / script), run_name="__main__")


def test_query_encoding_speed_benchmark(tiny_llama_dir, tiny_beir, tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)  # the script caches the query token vectors beside the model
    _run("light_retriever.py", ["--model", str(model), "--data", str(tiny_beir), "--batch-sizes", "1", "4",
                                "--repeats", "2", "--cache-batch-size", "64", "--out", str(tmp_path / "out")], monkeypatch)
    report = json.loads((tmp_path / "out" / "light_retriever_cpu.json").read_text())
    assert {r["encoder"] for r in report["results"]} == {"llm_forward", "embedding_bag", "token_counts"}
    assert all(r["queries_per_s"] > 0 for r in report["results"])
    assert (model / "query_embeddings.safetensors").is_file()


def test_scifact_benchmark_tiny_mode(tiny_llama_dir, tiny_beir, tmp_path, monkeypatch):
    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    _run("light_retriever_scifact.py", ["--tiny", "--model", str(tiny_llama_dir), "--data", str(tiny_beir), "--steps", "2",
                                        "--batch-size", "2", "--lora-r", "2", "--k", "5", "--out", str(tmp_path / "out")], monkeypatch)
    report = json.loads((tmp_path / "out" / "light_retriever_scifact.json").read_text())
    variants = {r["variant"]: r for r in report["results"]}
    assert set(variants) == {"symmetric dense", "asymmetric dense", "sparse", "hybrid"}
    assert all(0 <= r["nDCG@10"] <= 1 and r["queries_per_s"] > 0 for r in variants.values())
    assert "| hybrid |" in (tmp_path / "out" / "light_retriever_scifact.md").read_text()
