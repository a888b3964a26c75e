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


def test_exact_top_k_counts_tied_documents_as_found(tmp_path):
    """Two bitwise-equal vectors tie at the k-th place: strict recall takes the exact pick only, tie-aware recall
    either; a document below the k-th score by more than ε counts in neither."""
    import numpy as np
    import torch

    from benchmarks.scale import exact_top_k
    from boltir.index.shards import ShardWriter

    vectors = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.8, 0.6], [0.0, 1.0]])
    writer = ShardWriter(tmp_path / "shards", shard_size=2)  # the tie spans two shards
    writer.add(["a", "b"], vectors[:2])
    writer.add(["c", "d"], vectors[2:])
    writer.close()
    exact = exact_top_k(tmp_path / "shards", np.array([[1.0, 0.0]], dtype=np.float32), 2, "cpu")
    assert exact.ids[0][0] == "a" and exact.ids[0][1] in {"b", "c"} and exact.within == [{"a", "b", "c"}]
    other = ({"b", "c"} - {exact.ids[0][1]}).pop()
    assert exact.recall([["a", exact.ids[0][1]]], 2) == (1.0, 1.0)
    assert exact.recall([["a", other]], 2) == (0.5, 1.0)  # an equally good pick: a miss only when strict
    assert exact.recall([["a", "d"]], 2) == (0.5, 0.5)


def test_spliced_heads_stay_short_and_documents_distinct(tmp_path):
    from benchmarks.scale import HEAD_WORDS, write_corpus

    data = tmp_path / "data"
    data.mkdir()
    with open(data / "corpus.jsonl", "w") as corpus:
        for d in range(7):
            corpus.write(json.dumps({"_id": str(d), "title": f"t{d}", "text": " ".join(f"w{d}x{j}" for j in range(40 + 60 * d))}) + "\n")
    write_corpus(data, 21, tmp_path / "spliced.jsonl")
    docs = [json.loads(line) for line in (tmp_path / "spliced.jsonl").read_text().splitlines()]
    assert len(docs) == 21 and len({d["text"] for d in docs}) == 21 and len({d["_id"] for d in docs}) == 21
    for doc in docs:
        source, copy = doc["_id"].split("-")
        if copy == "0":
            continue  # copy 0 is SciFact itself: partner (d + 0) is d
        head = [w for w in doc["text"].split() if w.startswith(f"w{source}x")]
        assert doc["title"] == f"t{source}" and 0 < len(head) <= HEAD_WORDS
