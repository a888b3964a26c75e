"""The benchmark suite's pieces on tiny inputs: search rows, FLOP counting, the results page, training pairs."""

from __future__ import annotations

import argparse
import json
import tempfile

import pytest

from benchmarks import training
from benchmarks.common import RESULT_PREFIX
from benchmarks.report import render, token_flops
from benchmarks.search import bench_one, bench_seismic
from benchmarks.search import main as search_main
from benchmarks.training import training_pairs


def test_search_row_compares_boltir_with_raw_faiss(tmp_path):
    args = argparse.Namespace(dim=16, queries=20, latency_queries=3, k=10, repeats=1)
    row = bench_one("Flat", 300, args, tmp_path)
    assert row["docs"] == 300 and row["top1_agreement"] == 1.0
    assert row["raw_qps"] > 0 and row["boltir_qps"] > 0


def test_search_row_compares_boltir_with_raw_seismic(tmp_path):
    args = argparse.Namespace(queries=10, latency_queries=3, k=10, repeats=1, doc_terms=30, query_terms=8)
    row = bench_seismic(400, args, tmp_path)
    assert row["docs"] == 400 and row["index"] == "Seismic" and row["top1_agreement"] == 1.0
    assert row["raw_qps"] > 0 and row["boltir_qps"] > 0 and row["boltir_latency_ms"] > 0
    assert "Seismic: synthetic" in render([{"meta": _META, "results": [row]}], None, None)



@pytest.mark.usefixtures("fake_fast_plaid")
def test_search_row_compares_boltir_with_raw_plaid(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the indexes' working folder
    out = tmp_path / "results-cpu-search-plaid.json"
    search_main(["--indexes", "PLAID", "--sizes", "100,200", "--queries", "5", "--latency-queries", "2", "--k", "10",
                 "--repeats", "1", "--out", str(out)])
    emitted = [json.loads(line[len(RESULT_PREFIX) :]) for line in capsys.readouterr().out.splitlines()
               if line.startswith(RESULT_PREFIX)]
    saved = json.loads(out.read_text())
    assert [r["docs"] for r in emitted] == [100, 200] and saved["results"] == emitted  # saved as they were emitted
    for row in emitted:
        assert row["index"] == "PLAID" and row["raw_qps"] > 0 and row["boltir_qps"] > 0
        assert row["raw_latency_ms"] > 0 and row["boltir_latency_ms"] > 0
        assert row["topk_agreement"] == 1.0  # every query: boltir's ids are the engine's, in the engine's order
    page = render([saved], None, None)
    assert "PLAID: synthetic clustered 128-d float16 token vectors, 32 per document" in page
    assert "| PLAID | 200 |" in page

def test_flops_count_every_real_token(tiny_bert_dir):
    one = token_flops(str(tiny_bert_dir), ["berlin"])
    assert token_flops(str(tiny_bert_dir), ["berlin", "berlin"]) == pytest.approx(2 * one)
    assert token_flops(str(tiny_bert_dir), ["berlin is the capital"]) > one


_META = {"device": "cuda", "machine": {"gpu": "NVIDIA H200", "cpu": "x"}, "versions": {"torch": "2"}, "command": "c",
         "started": "now", "minutes": 1, "corpus_docs": 10, "corpus_flops": 1e12}


def test_results_page_shows_ratios_and_parity():
    meta = _META
    row = {"row": "indexing", "precision": "bf16", "batch_size": 8, "docs": 10, "times": [1, 1, 1], "peak_mem_mib": 1}
    saved = [{"meta": meta, "results": [{**row, "system": "st", "median_s": 2.0, "docs_per_s": 5.0},
                                        {**row, "system": "boltir-encode", "median_s": 0.5, "docs_per_s": 20.0}]}]
    parity = {"meta": {"machine": {"gpu": "H200"}, "command": "p"}, "reference_ndcg@10": 0.6451,
              "runs": [{"system": "boltir", "precision": "bf16", "ndcg@10": 0.6461, "encode_s": 1.0}]}
    page = render(saved, parity, None)
    assert "4.00x" in page and "+0.0010" in page and "(0.3%)" in page  # 1 TFLOP in 0.5 s of a 788 TFLOP/s peak


def test_training_pairs_cycle_scifact_train(tiny_beir):
    (tiny_beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    pairs = training_pairs(str(tiny_beir), 5)
    assert len(pairs) == 5 and pairs[0] == pairs[2] and pairs[0][1].startswith("Berlin")
    assert json.dumps(pairs)


def test_training_benchmark_splits_a_step_into_phases_and_profiles_it(tiny_bert_dir, tiny_train_beir, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["training", "--system", "boltir", "--model", str(tiny_bert_dir), "--data",
                                     str(tiny_train_beir), "--batch-size", "2", "--steps", "9", "--warmup-steps", "1",
                                     "--num-workers", "0", "--phases", "--profile", str(tmp_path)])
    training.main()
    rows = [json.loads(x[len(RESULT_PREFIX):]) for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX)]
    phases = next(r for r in rows if r["row"] == "training-phases")["ms_per_step"]
    assert set(phases) == {"data", "forward", "backward", "optimizer"} and all(v > 0 for v in phases.values())
    assert next(r for r in rows if r["row"] == "training")["timed_steps"] == 8
    assert "5 steps by self_cpu_time_total" in (tmp_path / "ops-boltir-w0.txt").read_text()
