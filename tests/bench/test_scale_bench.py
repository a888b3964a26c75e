"""benchmarks/scale.py end to end through its CLI on a tiny random BERT and the 6-document BEIR folder (spliced into
larger synthetic corpora): a measured size, then the 'auto' size the budget allows, each with the exact Flat
reference and HNSW's recall against it. (Kept apart from the other benchmark tests: scale.py changes with the
scale work.)"""

from __future__ import annotations

import json
import math
import random
import sys

import pytest


@pytest.fixture()
def varied_beir(tiny_beir):
    """tiny_beir with 80 more documents of seeded random words: splicing 6 documents into 500 repeats whole texts,
    and the exact scores of repeated texts tie, so recall against exact search would measure tie-breaking."""
    words = [w for line in (tiny_beir / "corpus.jsonl").read_text().splitlines() for w in json.loads(line)["text"].split()]
    rng = random.Random(0)
    with open(tiny_beir / "corpus.jsonl", "a") as corpus:
        for i in range(80):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 20)))
            corpus.write(json.dumps({"_id": f"r{i}", "title": "", "text": text}) + "\n")
    return tiny_beir


def test_scale_benchmark_sizes_and_recall(tiny_bert_dir, varied_beir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", [
        "scale", "--model", str(tiny_bert_dir), "--data", str(varied_beir), "--sizes", "300,auto", "--auto-step", "100",
        "--max-docs", "500", "--engines", "hnsw32", "--auto-engines", "hnsw32", "--queries", "3", "--single-queries", "3",
        "--single-queries-flat", "2", "--batch-size", "64", "--num-workers", "0", "--shard-size", "128",
        "--sample-s", "0.1", "--budget-s", "120", "--doc-length", "32", "--work", str(tmp_path / "work"), "--out", str(out)])
    from benchmarks import scale

    scale.main()
    summary = json.loads((out / "results.json").read_text())
    sizes = summary["sizes"]
    assert [s["docs"] for s in sizes] == [300, 500]  # 'auto': the largest multiple of 100 up to --max-docs in budget
    for size in sizes:
        assert all(math.isfinite(size[k]) and size[k] > 0 for k in ("index_s", "docs_per_s", "encode_docs_per_s"))
        assert size["batch_size"] == 64 and size["shard_size"] == 128 and set(size["engines"]) == {"flat", "hnsw32"}
        assert size["engines"]["flat"]["search"][0]["recall_at_10"] == 1.0  # the reference the others are held to
        rows = size["engines"]["hnsw32"]["search"]
        assert [r["settings"] for r in rows] == [{"ef_search": e} for e in (64, 128, 256, 512)]
        assert all(0 <= r["recall_at_10"] <= 1 and r["single_query_ms_median"] > 0 and r["batch_ms_per_query"] > 0
                   for r in rows)
        assert (out / f"memory-{size['docs']}.csv").is_file()
    assert summary["total_s"] > 0 and (out / "scale.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "| 300 | hnsw32 (HNSW32) |" in printed and "| 500 | flat (Flat) |" in printed
