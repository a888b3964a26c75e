"""The long-document benchmark scripts run end to end in their tiny settings (the full runs are for a GPU)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def beir_with_train(tiny_beir) -> Path:
    """tiny_beir plus a train split (the test queries reused: only the plumbing is under test)."""
    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    return tiny_beir


@pytest.mark.slow
def test_sedr_scifact_tiny_run_writes_a_table(tiny_bert_dir, beir_with_train, tmp_path):
    script = load("sedr_scifact")
    script.main(["--tiny", "--data", str(beir_with_train), "--model", str(tiny_bert_dir), "--out", str(tmp_path),
                 "--segment-length", "8", "--max-segments", "3", "--variants", "firstp,sedr", "--no-zero-shot"])
    result = json.loads((tmp_path / "sedr_scifact_tiny_cpu.json").read_text())
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["firstp"]["vectors"] == rows["firstp"]["documents"] == 6
    assert rows["sedr"]["vectors"] > 6 and 0 <= rows["sedr"]["nDCG@10"] <= 1
    assert "| sedr | fine-tuned |" in (tmp_path / "sedr_scifact_tiny_cpu.md").read_text()


@pytest.mark.slow
def test_sedr_encoding_tiny_run_writes_a_table(tmp_path):
    script = load("sedr_encoding")
    script.main(["--tiny", "--repeats", "1", "--modes", "encode", "--variants", "sedr", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "sedr_encoding_cpu_encode_tiny.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["sedr"] and rows[0]["peak_mib"] >= 0 and rows[0]["median_s"] > 0
