"""benchmarks/serve.py end to end through its CLI (the real server in its own process, real HTTP load) on a tiny
random BERT and the 6-document BEIR folder: one row per mode and client count, the ratio RESULTS.md quotes, the plot.
(Kept apart from the other benchmark tests: serve.py changes with the serving work.)"""

from __future__ import annotations

import json
import math
import sys

from benchmarks import serve


def test_serve_benchmark_rows_and_ratio(tiny_bert_dir, tiny_beir, quiet_temp, monkeypatch, capsys):
    out, png = quiet_temp / "out" / "serve.json", quiet_temp / "out" / "serve.png"  # its model copy, index, logs there too
    monkeypatch.setattr(sys, "argv", [
        "serve", "--data", str(tiny_beir), "--model", str(tiny_bert_dir), "--random-weights", "--threads", "1",
        "--clients", "1,2", "--seconds", "2", "--max-requests", "12", "--warmup", "2", "--max-batch-size", "4",
        "--client", "httpx", "--workers", "1,2", "--out", str(out), "--plot", str(png)])
    serve.main()
    summary = json.loads(out.read_text())
    assert summary["benchmark"] == "serve" and summary["queries"] == 3 and summary["random_weights"] is True
    rows = summary["rows"]
    assert [(r["mode"], r["workers"], r["clients"], r["max_batch_size"]) for r in rows] == [
        (mode, workers, clients, 4 if mode == "batched" else 1)
        for workers in (1, 2) for mode in ("batched", "one-at-a-time") for clients in (1, 2)]
    for row in rows:
        assert 0 < row["requests"] <= 12 and row["errors"] == 0
        assert row["qps"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"] and row["server_cpu_ms_per_query"] >= 0
    for start in (0, 4):  # per worker count: batched rows, then one-at-a-time rows
        for batched, single, plain in zip(rows[start : start + 2], rows[start + 2 : start + 4], rows[2:4]):
            assert math.isfinite(batched["speedup_vs_one_at_a_time"]) and batched["speedup_vs_one_at_a_time"] > 0
            assert batched["speedup_vs_one_at_a_time"] == round(batched["qps"] / single["qps"], 2)
            assert batched["speedup_vs_one_at_a_time_1_worker"] == round(batched["qps"] / plain["qps"], 2)
    assert "| batched | 2 | 2 |" in capsys.readouterr().out and png.read_bytes()[:4] == b"\x89PNG"


def test_serve_stages_times_each_stage_of_a_search_batch(tiny_bert_dir, tiny_beir, quiet_temp, monkeypatch, capsys):
    from benchmarks import serve_stages
    from boltir.index import read_manifest

    index_dir, out = quiet_temp / "index-torch", quiet_temp / "stages.json"
    serve.build_index(str(tiny_bert_dir), tiny_beir, index_dir, "cpu", "torch")
    assert read_manifest(index_dir)["engine"] == "torch"
    monkeypatch.setattr(sys, "argv", ["serve_stages", "--index-dir", str(index_dir), "--corpus", str(tiny_beir),
                                      "--model", str(tiny_bert_dir), "--threads", "1", "--batches", "1,3",
                                      "--repeats", "4", "--out", str(out)])
    serve_stages.main()
    summary = json.loads(out.read_text())
    assert summary["engine"] == "torch" and [row["batch"] for row in summary["rows"]] == [1, 3]
    for row in summary["rows"]:
        for stage in ("encode", "search", "hits"):
            assert row[f"{stage}_ms"] > 0 and row[f"{stage}_cpu_ms"] >= 0
    printed = capsys.readouterr().out
    assert "engine torch, threads 1" in printed and "| 3 |" in printed
