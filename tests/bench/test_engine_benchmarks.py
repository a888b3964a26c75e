"""The engine benchmark scripts run end to end on a tiny collection (their figures come from full runs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import seismic_scifact  # noqa: E402
import sparse_multivector_scifact  # noqa: E402


def _rows(out: Path, name: str) -> list[dict]:
    return json.loads((out / f"{name}.json").read_text())["rows"]


def test_seismic_benchmark_compares_with_exact(tiny_bert_mlm_dir, tiny_beir, tmp_path):
    seismic_scifact.main(["--data", str(tiny_beir), "--model", str(tiny_bert_mlm_dir), "--out", str(tmp_path),
                          "--heap-factors", "0.5"])
    rows = _rows(tmp_path, "seismic_scifact")
    assert [r["searcher"] for r in rows][0] == "exact" and len(rows) == 3
    assert rows[0]["recall@10_vs_exact"] == 1.0 and all(0 <= r["recall@10_vs_exact"] <= 1 for r in rows)
    assert all(r["latency_ms_mean"] > 0 and r["index_mb"] > 0 for r in rows)
    # the exact top-10 is the head of its top-100: timed once at 100; Seismic prunes with k: timed at 10
    assert [r["latency_k"] for r in rows] == [100, 10, 10] and rows[0]["nDCG@10_minus_exact"] == 0.0
    assert (tmp_path / "seismic_scifact.md").read_text().startswith("## SPLADE on SciFact")


def _earlier_run(path: Path, family: str, searchers: list[str], ndcg: float) -> Path:
    rows = [{"family": family, "model": f"{family}-model {stage}", "searcher": searcher, "nDCG@10": ndcg, "R@100": 0.9,
             "nDCG@10_minus_exact": 0.0, "recall@10_vs_exact": 1.0, "latency_ms_mean": 1.5, "latency_ms_p95": 2.0,
             "latency_k": 10, "index_mb": 7.6, "query_encode_ms": 0.4, **({"engine": True} if searcher == searchers[-1] else {})}
            for stage in ("fine-tuned", "zero-shot") for searcher in searchers]
    path.write_text(json.dumps({"setup": {"device": "GPU"}, "fits": {family: {"steps": 104, "fit_s": 50.0}}, "rows": rows}))
    return path


def test_sparse_multivector_report_merges_the_calls_families(tiny_beir, tmp_path):
    # the GPU run measures the families in two calls; the second reports all of them together
    dense = _earlier_run(tmp_path / "dense.json", "dense", ["faiss Flat (exact)"], 0.75)
    colbert = _earlier_run(tmp_path / "colbert.json", "colbert", ["exact MaxSim (exhaustive)", "plaid"], 0.7)
    sparse_multivector_scifact.main(["--families", "--include", str(colbert), str(dense), "--data", str(tiny_beir),
                                     "--out", str(tmp_path / "out"), "--name", "merged"])
    rows = _rows(tmp_path / "out", "merged")
    assert [(r["family"], r["model"].split()[-1]) for r in rows] == [
        ("dense", "zero-shot"), ("dense", "fine-tuned"), *[("colbert", "zero-shot")] * 2, *[("colbert", "fine-tuned")] * 2]
    text = (tmp_path / "out" / "merged.md").read_text()
    summary = text.split("### Every searcher")[0]
    assert summary.count("| colbert |") == 2 and "| plaid |" in summary and "exhaustive" not in summary
    assert "104 steps, 50.0 s" in summary and text.count("| colbert |") == 6


def test_sparse_multivector_engines_put_exact_first_and_the_engine_last(monkeypatch):
    args = argparse.Namespace(candidates=[16], plaid_probes=[4], without=[], triton_kmeans=False)
    monkeypatch.setattr(sparse_multivector_scifact.importlib.util, "find_spec", lambda name: object())  # fast-plaid "installed"
    configs, variants = sparse_multivector_scifact.engines("colbert", args)
    assert [v.label for v in variants] == ["exact MaxSim (exhaustive)", "exact MaxSim (Faiss candidates, 16/token)",
                                           "exact MaxSim (Faiss candidates, 64/token)", "plaid (n_ivf_probe=4)",
                                           "plaid (default: nbits=4, n_ivf_probe=8)"]
    assert all(v.nested for v in variants) and configs["plaid"].use_triton_kmeans is False
    assert "plaid" not in sparse_multivector_scifact.engines("colbert", argparse.Namespace(**{**vars(args), "without": ["plaid"]}))[0]
    configs, variants = sparse_multivector_scifact.engines("splade", args)
    assert list(configs) == ["exact", "seismic"] and [v.nested for v in variants] == [True, False]
    assert list(sparse_multivector_scifact.engines("splade", argparse.Namespace(**{**vars(args), "without": ["seismic"]}))[0]) == ["exact"]


def test_sparse_multivector_fits_and_measures_a_family(tiny_bert_dir, tiny_bert_mlm_dir, tiny_train_beir, quiet_temp,
                                                       monkeypatch):
    # the measuring path end to end on a slice: zero-shot dense negatives, `boltir fit` of SPLADE, exact vs Seismic
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the fit configs are named from the repository root
    out = quiet_temp / "out"
    sparse_multivector_scifact.main([
        "--data", str(tiny_train_beir), "--minilm", str(tiny_bert_dir), "--splade", str(tiny_bert_mlm_dir),
        "--families", "splade", "--zero-shot", "--limit-docs", "4", "--limit-queries", "2", "--max-steps", "2",
        "--train-batch-size", "2", "--batch-size", "4", "--work", str(quiet_temp / "work"), "--out", str(out)])
    result = json.loads((out / "sparse_multivector_scifact.json").read_text())
    assert result["fits"]["splade"]["steps"] == 2 and result["setup"]["slice"] == {"docs": 4, "queries": 2}
    assert result["setup"]["test_queries"] == 2 and result["setup"]["negatives"].endswith(".run")
    rows = result["rows"]
    assert [(r["searcher"], r.get("engine", False)) for r in rows] == [("exact inverted index", False), ("seismic", True)]
    assert rows[0]["recall@10_vs_exact"] == 1.0 and rows[0]["nDCG@10_minus_exact"] == 0.0
    assert all(0 <= r["nDCG@10"] <= 1 and 0 <= r["recall@10_vs_exact"] <= 1 and r["latency_ms_mean"] > 0 for r in rows)
    summary = (out / "sparse_multivector_scifact.md").read_text().split("### Every searcher")[0]
    assert "| splade | splade-tiny fine-tuned | seismic |" in summary and "2 steps" in summary
