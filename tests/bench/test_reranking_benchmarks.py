"""The re-ranking and 2-device pieces of the benchmark suite, on a tiny random cross-encoder."""

from __future__ import annotations

import argparse
import json

import pytest

from benchmarks.common import RESULT_PREFIX
from benchmarks.report import render
from benchmarks.reranking import SYSTEMS, add_arguments, measure, rerank_lists


@pytest.fixture()
def bm25_run(tiny_beir, tmp_path):
    path = tmp_path / "bm25.run"
    docs = ["d1", "d2", "d3", "d4", "d5", "d6"]
    path.write_text("".join(f"{q} Q0 {d} {r + 1} {10 - r} bm25\n" for q in ("q1", "q2", "q3") for r, d in enumerate(docs)))
    return path


def test_rerank_lists_follow_the_run(tiny_beir, bm25_run):
    lists = rerank_lists(str(tiny_beir), str(bm25_run), depth=4)
    assert [q for q, *_ in lists] == ["q1", "q2", "q3"]
    assert lists[0][2] == ["d1", "d2", "d3", "d4"] and lists[0][3][0].startswith("Berlin berlin")
    assert len(rerank_lists(str(tiny_beir), str(bm25_run), depth=100, queries=2)) == 2


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_each_reranking_system_times_every_pair(system, tiny_cross_encoder_dir, tiny_beir, bm25_run, capsys):
    model = tiny_cross_encoder_dir
    assert json.loads((model / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    parser = argparse.ArgumentParser()
    add_arguments(parser, sorted(SYSTEMS))
    args = parser.parse_args(["--system", system, "--model", str(model), "--data", str(tiny_beir), "--run", str(bm25_run),
                              "--batch-sizes", "4,8", "--repeats", "1", "--max-length", "64", "--num-workers", "0",
                              "--queries-per-batch", "2", "--warmup-pairs", "6"])
    measure(args, SYSTEMS)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX))
    row = json.loads(line[len(RESULT_PREFIX):])
    assert row["pairs"] == 18 and row["pairs_per_s"] > 0 and row["batch_size"] in (4, 8)


def test_first_pass_is_timed_and_cudnn_attention_can_be_allowed_again(tiny_cross_encoder_dir, tiny_beir, bm25_run,
                                                                      capsys, monkeypatch):
    from boltir.models import model as base

    monkeypatch.setattr(base, "SDPA_BACKENDS", base.SDPA_BACKENDS)  # the flag changes it: restored after the test
    parser = argparse.ArgumentParser()
    add_arguments(parser, sorted(SYSTEMS))
    args = parser.parse_args(["--system", "boltir-score", "--model", str(tiny_cross_encoder_dir),
                              "--data", str(tiny_beir), "--run", str(bm25_run), "--batch-sizes", "8", "--repeats", "1",
                              "--max-length", "64", "--warmup-pairs", "6", "--first-pass", "--cudnn-attention"])
    measure(args, SYSTEMS)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX))
    row = json.loads(line[len(RESULT_PREFIX):])
    assert row["first_pass_s"] > 0 and row["cudnn_attention"] is True
    assert any(b.name == "CUDNN_ATTENTION" for b in base.SDPA_BACKENDS)


def test_results_page_shows_reranking_and_ddp_ratios():
    meta = {"device": "cuda", "machine": {"gpu": "NVIDIA H200"}, "versions": {}, "command": "c", "started": "now",
            "minutes": 1, "corpus_docs": 10, "corpus_flops": 1e12}
    rerank = {"row": "reranking", "precision": "bf16", "batch_size": 256, "pairs": 30000, "queries": 300,
              "max_length": 512, "times": [1, 1, 1], "peak_mem_mib": 1, "model": "m"}
    train = {"row": "training", "precision": "bf16", "batch_size": 64, "timed_steps": 10, "seconds": 1.0, "peak_mem_mib": 1}
    results = [{**rerank, "system": "st", "median_s": 10.0, "pairs_per_s": 3000.0, "first_pass_s": 12.0},
               {**rerank, "system": "boltir-score", "median_s": 2.0, "pairs_per_s": 15000.0, "first_pass_s": 3.0},
               {**rerank, "system": "boltir-score", "median_s": 1.0, "pairs_per_s": 30000.0, "cudnn_attention": True},
               {**rerank, "system": "boltir-score", "median_s": 1.5, "pairs_per_s": 20000.0, "padded": True},
               {**rerank, "system": "lir-re-rank", "median_s": 5.0, "pairs_per_s": 6000.0},
               {**train, "system": "boltir", "samples_per_s": 100.0, "num_workers": 4},
               {**train, "system": "boltir", "devices": 2, "samples_per_s": 190.0}]
    page = render([{"meta": meta, "results": results}], None, None)
    assert "5.00x" in page and "2.50x" in page  # boltir vs ST, boltir vs lightning-ir
    assert "boltir (2 devices, DDP)" in page and "1.90x" in page
    assert "3.00 s, 10,000/s, 4.00x" in page  # first passes: boltir's vs ST's
    assert "boltir-score (cuDNN attention)" in page and "boltir (4 workers)" in page
    assert "boltir-score (padded rows)" in page


def _fake_varlen_kernel(monkeypatch):
    """Pretend PyTorch's variable-length flash kernel runs here (a GPU): pairs are packed, and on this CPU the
    packed layout computes through padded rows."""
    from boltir.modules import device

    monkeypatch.setattr(device, "varlen_runs", lambda device, dtype: True)


def test_padded_flag_keeps_boltir_from_packing(tiny_bert_dir, tiny_beir, bm25_run, monkeypatch):
    from benchmarks.reranking import _module

    _fake_varlen_kernel(monkeypatch)
    parser = argparse.ArgumentParser()
    add_arguments(parser, sorted(SYSTEMS))
    base = ["--system", "boltir-score", "--model", str(tiny_bert_dir), "--data", str(tiny_beir), "--run", str(bm25_run)]
    assert _module(parser.parse_args(base)).eval().packs_sequences()
    assert not _module(parser.parse_args([*base, "--padded"])).eval().packs_sequences()


def test_packed_parity_compares_each_setting_with_fp32(tiny_cross_encoder_dir, tiny_beir, bm25_run, capsys, monkeypatch):
    from benchmarks import packed_parity

    _fake_varlen_kernel(monkeypatch)
    model = tiny_cross_encoder_dir
    packed_parity.main(["--data", str(tiny_beir), "--run", str(bm25_run), "--model", str(model), "--device", "cpu",
                        "--batch-size", "4"])
    rows = [json.loads(x[len(RESULT_PREFIX):]) for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX)]
    assert [(r["precision"], r["packed"]) for r in rows] == [("fp32", False), ("bf16", False), ("bf16", True)]
    assert rows[0]["ndcg_change"] == 0.0 and rows[0]["max_score_diff"] == 0.0
    assert all(r["scores"] == 18 and 0.0 <= r["nDCG@10"] <= 1.0 for r in rows)
    assert 0.0 < rows[2]["max_score_diff"] < 0.1  # bf16 rounding, not another model


def test_packed_parity_of_a_bi_encoder_searches_the_whole_corpus(tiny_bert_dir, tiny_beir, capsys, monkeypatch):
    from benchmarks import packed_parity

    _fake_varlen_kernel(monkeypatch)
    packed_parity.main(["--family", "bi-encoder", "--data", str(tiny_beir), "--model", str(tiny_bert_dir),
                        "--device", "cpu", "--depth", "5"])
    rows = [json.loads(x[len(RESULT_PREFIX):]) for x in capsys.readouterr().out.splitlines() if x.startswith(RESULT_PREFIX)]
    assert [(r["precision"], r["packed"]) for r in rows] == [("fp32", False), ("bf16", False), ("bf16", True)]
    assert all(r["family"] == "bi-encoder" and r["queries"] == 3 and r["scores"] == 15 for r in rows)
    assert rows[0]["max_score_diff"] == 0.0 and 0.0 < rows[2]["max_score_diff"] < 0.1
