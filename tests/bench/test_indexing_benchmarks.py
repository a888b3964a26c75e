"""The indexing entry points (benchmarks.indexing, its scaling points, cpu_interleaved, run and its page) end to
end on a tiny random BERT and the 6-document BEIR folder: rows with every field RESULTS.md reads, finite ratios."""

from __future__ import annotations

import json
import math
import sys

import pytest

from benchmarks import cpu_interleaved, indexing
from benchmarks.common import RESULT_PREFIX
from benchmarks.scaling import plot


def _emitted(capsys) -> list[dict]:
    return [json.loads(x[len(RESULT_PREFIX):]) for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX)]


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@pytest.mark.parametrize("system", ["st", "boltir-encode", "boltir-index"])
def test_indexing_row_and_scaling_points(system, tiny_bert_dir, tiny_beir, quiet_temp, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["indexing", "--system", system, "--model", str(tiny_bert_dir), "--data",
                                      str(tiny_beir), "--batch-sizes", "2,4", "--repeats", "2", "--doc-length", "32",
                                      "--num-workers", "0", "--points", "3x2", "--tag", "t"])
    indexing.main()
    row, point = _emitted(capsys)
    assert row["row"] == "indexing" and row["system"] == system and row["tag"] == "t" and row["docs"] == 6
    assert row["batch_size"] in (2, 4) and set(row["sweep"]) == {"2", "4"}  # one sweep run per size (JSON keys)
    assert len(row["times"]) == 2 and _positive(row["median_s"]) and _positive(row["docs_per_s"])
    assert row["docs_per_s"] == pytest.approx(6 / row["median_s"]) and row["peak_mem_mib"] > 0
    assert row["num_workers"] == (0 if system == "boltir-index" else None) and "torch" in row["versions"]
    # the scaling point: the first 3 documents twice, under fresh ids, at the chosen batch size
    assert point["row"] == "scaling" and point["docs"] == 6 and point["batch_size"] == row["batch_size"]
    assert _positive(point["docs_per_s"])


def test_scaling_plot_draws_both_panels(tmp_path):
    rows = [{"row": "scaling", "system": "st", "precision": "fp32", "device": "cpu", "docs": n, "median_s": n / 100}
            for n in (100, 1000)]
    rows += [{"row": "indexing", "system": "st", "precision": "fp32", "device": "cpu", "docs": 5183, "median_s": 50.0},
             {"row": "indexing", "system": "lir-index", "precision": "fp32", "device": "cpu", "docs": 5183, "median_s": 9.0},
             {"row": "search", "index": "IVF1024,Flat", "docs": 10**5, "boltir_latency_ms": 1.2, "raw_latency_ms": 1.0},
             {"row": "search", "index": "Flat", "docs": 10**5, "boltir_latency_ms": 3.0, "raw_latency_ms": 2.9},
             {"row": "scaling", "error": "timed out"}]
    path = plot(rows, tmp_path / "plots" / "scaling.png")
    assert path == tmp_path / "plots" / "scaling.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_interleaved_rows_share_one_reference(tiny_bert_dir, tiny_train_beir, quiet_temp, monkeypatch, capsys):
    out = quiet_temp / "out"
    monkeypatch.setattr(sys, "argv", ["cpu_interleaved", "--model", str(tiny_bert_dir), "--data", str(tiny_train_beir),
                                      "--run", str(tiny_train_beir / "first-stage.run"), "--docs", "5", "--queries", "2",
                                      "--depth", "3", "--batch-size", "4", "--rounds", "2", "--precisions", "fp32,bf16",
                                      "--out", str(out)])
    cpu_interleaved.main()
    rows = json.loads((out / "cpu_interleaved.json").read_text())
    assert rows == _emitted(capsys)
    assert [(r["precision"], r["system"]) for r in rows] == [
        (p, s) for p in ("fp32", "bf16") for s in ("st", "boltir-encode", "st-rerank", "boltir-score")]
    for row in rows:
        assert row["items"] == (5 if row["row"] == "indexing" else 6) and len(row["times"]) == 2
        assert _positive(row["per_s"]) and _positive(row["vs_st"])
        if row["system"].startswith("st"):
            assert row["vs_st"] == 1.0  # each row's ratio is against sentence-transformers of the same row


def test_run_saves_the_rows_and_renders_the_page(tiny_bert_dir, tiny_beir, quiet_temp, monkeypatch, capsys):
    """``benchmarks.run`` as gpu.sh calls it, its child (the indexing row) in its own process: the scaling points,
    the saved meta + results, and the results page rendered from them."""
    from benchmarks import run

    out, md = quiet_temp / "results", quiet_temp / "page" / "RESULTS-bench.md"
    monkeypatch.setattr(sys, "argv", [
        "run", "--device", "cpu", "--rows", "indexing,scaling", "--model", str(tiny_bert_dir), "--data", str(tiny_beir),
        "--systems", "boltir-index", "--index-batch-sizes", "4", "--repeats", "1", "--num-workers", "0",
        "--scaling-points", "3x2", "--out", str(out), "--md", str(md), "--name", "tiny"])
    run.main()
    saved = json.loads((out / "results-tiny.json").read_text())
    meta = saved["meta"]
    assert meta["corpus_docs"] == 6 and meta["corpus_flops"] > 0 and meta["device"] == "cpu"
    assert meta["command"].startswith("python -m benchmarks.run --device cpu") and "torch" in meta["versions"]
    rows = saved["results"]
    assert [(r["row"], r["system"], r["docs"]) for r in rows] == [("indexing", "boltir-index", 6), ("scaling", "boltir-index", 6)]
    assert all(_positive(r["docs_per_s"]) for r in rows) and not [r for r in rows if "error" in r]
    page = md.read_text()
    assert page.strip() in capsys.readouterr().out  # printed as written
    assert "## CPU" in page and "| boltir-index |" in page and (md.parent / "scaling.png").is_file()
