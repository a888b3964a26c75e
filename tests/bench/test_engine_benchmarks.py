"""The engine benchmark scripts run end to end on a tiny collection (their figures come from full runs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from boltir import ColBERTConfig, ColBERTModule

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import plaid_scifact  # noqa: E402
import seismic_scifact  # noqa: E402


def _rows(out: Path, name: str) -> list[dict]:
    return json.loads((out / f"{name}.json").read_text())["rows"]


def test_seismic_benchmark_compares_with_exact(tiny_bert_mlm_dir, tiny_beir, tmp_path):
    seismic_scifact.main(["--data", str(tiny_beir), "--model", str(tiny_bert_mlm_dir), "--out", str(tmp_path),
                          "--heap-factors", "0.5"])
    rows = _rows(tmp_path, "seismic_scifact")
    assert [r["searcher"] for r in rows][0] == "exact" and len(rows) == 3
    assert rows[0]["recall@10_vs_exact"] == 1.0 and all(0 <= r["recall@10_vs_exact"] <= 1 for r in rows)
    assert all(r["latency_ms_mean"] > 0 and r["index_mb"] > 0 for r in rows)
    assert (tmp_path / "seismic_scifact.md").read_text().startswith("## SPLADE on SciFact")


def test_plaid_benchmark_runs_the_exact_searchers(tiny_bert_dir, tiny_beir, tmp_path):
    ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=16)).save_pretrained(tmp_path / "colbert")
    plaid_scifact.main(["--data", str(tiny_beir), "--model", str(tmp_path / "colbert"), "--out", str(tmp_path)])
    rows = _rows(tmp_path, "plaid_scifact")
    assert rows[0]["searcher"] == "exact MaxSim (exhaustive)" and rows[0]["recall@10_vs_exact"] == 1.0
    assert len(rows) >= 3  # + Faiss candidates at two settings (+ PLAID where fast-plaid is installed)
