"""ONNX Runtime on the CPU: docs/s, pairs/s and SciFact nDCG@10 of boltir's default (``backend="auto"``: ONNX
Runtime from the export it caches), boltir on PyTorch, boltir's ``export onnx`` (fp32 and ORT dynamic int8) and
sentence-transformers (PyTorch default, and its ONNX backend fp32 / int8).

Every system of a part runs in one process, timed in interleaved rounds (A, B, C, A, B, C, ...) so load from other
jobs on a shared machine hits them alike; each row is the median of ``--rounds``. sentence-transformers' ONNX
backend needs ``optimum[onnxruntime]``, which pins transformers 4.x: it runs in its own environment
(``--st-onnx-python``), interleaved there with sentence-transformers' PyTorch default so its ratio is measured
in the same process too.

Effectiveness: SciFact test, the first ``--queries`` queries, their judged documents plus ``--extra-docs`` others
(exact cosine search over each system's own vectors, top 100); re-ranking: each system re-scores the top
``--depth`` of boltir's PyTorch run for the first ``--rerank-queries`` queries. Speed: the first ``--speed-docs``
documents of that corpus; the pairs of the first ``--speed-queries`` re-ranking lists.

Speed and nDCG can run apart (``--skip-ndcg`` under an exclusive CPU lock; ``--skip-speed --queries 0
--extra-docs -1`` for nDCG@10 over all test queries and the whole corpus).

Run: ``python -m benchmarks.onnx_cpu --data ../shared/data/scifact --out benchmarks/results/onnx_cpu
--st-onnx-python /tmp/st-onnx/bin/python``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .common import emit, machine, run_child, timed, versions

BI_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CROSS_MODEL = "cross-encoder/ms-marco-MiniLM-L-12-v2"
BATCH_SIZE = 32  # sentence-transformers' default, and boltir's CPU encoding chunk


def scifact_subset(data: str, queries: int, extra_docs: int) -> dict[str, Any]:
    """Query and document ids and texts of the subset, with its judgements (read through boltir's datasets)."""
    from boltir import DocDataset, QueryDataset

    topics = QueryDataset(data, split="test")
    kept = topics.queries[:queries] if queries > 0 else topics.queries
    qrels = {q.query_id: topics.qrels[q.query_id] for q in kept}
    judged = {d for docs in qrels.values() for d in docs}
    doc_ids, doc_texts, others = [], [], 0
    for doc in DocDataset(data):
        if doc.doc_id in judged or extra_docs < 0 or others < extra_docs:
            doc_ids.append(doc.doc_id)
            doc_texts.append(doc.text)
            others += doc.doc_id not in judged
    return {"query_ids": [q.query_id for q in kept], "queries": [q.text for q in kept], "qrels": qrels,
            "doc_ids": doc_ids, "docs": doc_texts}


def dense_run(data: dict[str, Any], queries: np.ndarray, docs: np.ndarray, k: int = 100):
    from boltir import Run

    scores = queries @ docs.T
    run = Run(name="dense")
    for row, qid in enumerate(data["query_ids"]):
        top = np.argsort(-scores[row])[:k]
        run.add(qid, [data["doc_ids"][i] for i in top], scores[row, top].tolist())
    return run


def interleaved(systems: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each system's call over ``rounds`` interleaved rounds, after one warm-up call each."""
    for fn in systems.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            times[name].append(timed(fn, "cpu"))
    return times


def rows_for(part: str, times: dict[str, list[float]], items: int, reference: str, ndcg: dict[str, float],
             systems: list[str]) -> list[dict]:
    """One row per system: median seconds, items per second and the ratio to ``reference`` (where timed), nDCG@10."""
    base = statistics.median(times[reference]) if times else None
    rows = []
    for name in systems:
        row: dict[str, Any] = {"part": part, "system": name, "ndcg10": ndcg.get(name)}
        if times:
            median = statistics.median(times[name])
            row |= {"items": items, "times": times[name], "median_s": median, "per_s": items / median,
                    f"vs_{reference}": base / median}
        rows.append(row)
        emit(row)
    return rows


def rerank_lists(data: dict[str, Any], run: Any, queries: int, depth: int) -> list[tuple[str, str, list[str], list[str]]]:
    texts = dict(zip(data["doc_ids"], data["docs"]))
    query_texts = dict(zip(data["query_ids"], data["queries"]))
    lists = []
    for qid in data["query_ids"][:queries]:
        ids = [d for d, _ in run[qid][:depth]]
        lists.append((qid, query_texts[qid], ids, [texts[d] for d in ids]))
    return lists


def rerank_run(lists: list, score: Callable[[list[str], list[list[str]]], list[list[float]]]):
    from boltir import Run

    run = Run(name="rerank")
    for (qid, _, ids, _), scores in zip(lists, score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists])):
        run.add(qid, ids, scores)
    return run


def st_cross_scores(model: Any) -> Callable[[list[str], list[list[str]]], list[list[float]]]:
    def score(queries: list[str], docs: list[list[str]]) -> list[list[float]]:
        flat = model.predict([(q, d) for q, ds in zip(queries, docs) for d in ds], batch_size=BATCH_SIZE,
                             show_progress_bar=False)
        out, start = [], 0
        for ds in docs:
            out.append([float(s) for s in flat[start : start + len(ds)]])
            start += len(ds)
        return out
    return score


def boltir_cross_scores(module: Any) -> Callable[[list[str], list[list[str]]], list[list[float]]]:
    return lambda queries, docs: [s.tolist() for s in module.score(queries, docs).scores]


def ndcg(run: Any, qrels: dict) -> float:
    """nDCG@10 over the run's queries (re-ranking covers only the first ``--rerank-queries`` of them)."""
    from boltir import evaluate

    return evaluate(run, {q: qrels[q] for q in run.query_ids}, ["nDCG@10"])["nDCG@10"]


# -- the systems of this environment -----------------------------------------------------------------
def boltir_systems(work: Path) -> tuple[dict[str, Callable], dict[str, Callable]]:
    """Encoders and pair scorers: sentence-transformers' PyTorch default, boltir's default (``backend="auto"``:
    ONNX Runtime from its cached export on this CPU), boltir on PyTorch, and ``boltir export onnx`` fp32 / int8."""
    import os

    from sentence_transformers import CrossEncoder, SentenceTransformer

    from boltir import BiEncoderModule, CrossEncoderModule
    from boltir.integrations.onnx import export_onnx
    from boltir.models import resolve_model_dir

    os.environ.pop("BOLTIR_BACKEND", None)  # the default as users get it
    os.environ["BOLTIR_CACHE"] = str(work / "cache")  # a fresh export (its time is outside the timed rounds)
    for name, model, quantize in (("bi-fp32", BI_MODEL, None), ("bi-int8", BI_MODEL, "int8"),
                                  ("cross-fp32", CROSS_MODEL, None), ("cross-int8", CROSS_MODEL, "int8")):
        if not (work / name).is_dir():
            family = "bi-encoder" if name.startswith("bi") else "cross-encoder"
            export_onnx(model, work / name, quantize=quantize, family=family)
    st = SentenceTransformer(str(resolve_model_dir(BI_MODEL)), device="cpu")
    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {
        "st-torch": lambda texts: st.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True),
    }
    for name, module in (("boltir-default", BiEncoderModule(BI_MODEL)),
                         ("boltir-torch", BiEncoderModule(BI_MODEL, backend="torch")),
                         ("boltir-onnx-fp32", BiEncoderModule(work / "bi-fp32", backend="onnx")),
                         ("boltir-onnx-int8", BiEncoderModule(work / "bi-int8", backend="onnx"))):
        encoders[name] = lambda texts, module=module: module.encode_docs(texts, batch_size=BATCH_SIZE).numpy()
    cross_dir = str(resolve_model_dir(CROSS_MODEL))
    scorers = {"st-torch": st_cross_scores(CrossEncoder(cross_dir, device="cpu", max_length=512))}
    for name, module in (("boltir-default", CrossEncoderModule(CROSS_MODEL, encode_batch_size=BATCH_SIZE)),
                         ("boltir-torch", CrossEncoderModule(CROSS_MODEL, encode_batch_size=BATCH_SIZE, backend="torch")),
                         ("boltir-onnx-fp32", CrossEncoderModule(work / "cross-fp32", backend="onnx", encode_batch_size=BATCH_SIZE)),
                         ("boltir-onnx-int8", CrossEncoderModule(work / "cross-int8", backend="onnx", encode_batch_size=BATCH_SIZE))):
        scorers[name] = boltir_cross_scores(module)
    return encoders, scorers


def measure(args: argparse.Namespace, data: dict[str, Any], work: Path, encoders: dict[str, Callable],
            scorers: dict[str, Callable], first_stage: Any = None) -> list[dict]:
    """Interleaved speed rounds (unless ``--skip-speed``) and nDCG@10 (unless ``--skip-ndcg``) of every system;
    re-ranking re-scores ``first_stage`` (boltir PyTorch's dense run, made here when not given)."""
    import torch

    rows, runs = [], {}
    speed_docs = data["docs"][: args.speed_docs]
    with torch.inference_mode():
        times = {} if args.skip_speed else interleaved({n: (lambda fn=fn: fn(speed_docs)) for n, fn in encoders.items()}, args.rounds)
        scores = {}
        for name, fn in encoders.items():  # queries go through the document encoder: MiniLM is symmetric
            if args.skip_ndcg and not (name == "boltir-torch" and first_stage is None):
                continue
            runs[name] = dense_run(data, fn(data["queries"]), fn(data["docs"]))
            scores[name] = ndcg(runs[name], data["qrels"])
            print(f"encode {name}: nDCG@10 {scores[name]:.4f}", flush=True)
        rows += rows_for("encode", times, len(speed_docs), "st-torch", scores, list(encoders))
        lists = rerank_lists(data, first_stage or runs["boltir-torch"], args.rerank_queries, args.depth)
        speed_lists = lists[: args.speed_queries]
        times = {} if args.skip_speed else interleaved({n: (lambda fn=fn: rerank_run(speed_lists, fn)) for n, fn in scorers.items()}, args.rounds)
        scores = {}
        for name, fn in scorers.items():
            if not args.skip_ndcg:
                scores[name] = ndcg(rerank_run(lists, fn), data["qrels"])
                print(f"rerank {name}: nDCG@10 {scores[name]:.4f}", flush=True)
        rows += rows_for("rerank", times, sum(len(ids) for _, _, ids, _ in speed_lists), "st-torch", scores, list(scorers))
    if first_stage is None:
        runs["boltir-torch"].to_trec(work / "boltir-torch.run")  # the first stage the child re-ranks
    return rows


def st_onnx_part(args: argparse.Namespace, data: dict[str, Any], work: Path) -> list[dict]:
    """sentence-transformers' PyTorch default and ONNX backend (fp32, int8), in the optimum environment."""
    import shutil

    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    from boltir import Run
    from boltir.models import resolve_model_dir

    local = work / "st-minilm"
    if not (local / "onnx").is_dir():  # exported by an earlier run in this --work folder (saving over it fails)
        shutil.copytree(resolve_model_dir(BI_MODEL), local, dirs_exist_ok=True)
        SentenceTransformer(str(local), backend="onnx", device="cpu").save_pretrained(str(local))
        export_dynamic_quantized_onnx_model(SentenceTransformer(str(local), backend="onnx", device="cpu"), "avx512_vnni", str(local))
    models = {"st-torch": SentenceTransformer(str(local), device="cpu"),
              "st-onnx-fp32": SentenceTransformer(str(local), backend="onnx", device="cpu"),
              "st-onnx-int8": SentenceTransformer(str(local), backend="onnx", device="cpu",
                                                  model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"})}
    encoders = {name: (lambda texts, m=m: m.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True))
                for name, m in models.items()}
    cross_dir = work / "st-cross"
    if not (cross_dir / "onnx").is_dir():
        shutil.copytree(resolve_model_dir(CROSS_MODEL), cross_dir, dirs_exist_ok=True)
        CrossEncoder(str(cross_dir), backend="onnx", device="cpu", max_length=512).save_pretrained(str(cross_dir))
    scorers = {"st-torch": st_cross_scores(CrossEncoder(str(cross_dir), device="cpu", max_length=512)),
               "st-onnx-fp32": st_cross_scores(CrossEncoder(str(cross_dir), backend="onnx", device="cpu", max_length=512))}
    return measure(args, data, work, encoders, scorers, first_stage=Run.from_trec(work / "boltir-torch.run"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the SciFact BEIR folder")
    parser.add_argument("--queries", type=int, default=100, help="the first N test queries (0: all 300)")
    parser.add_argument("--extra-docs", type=int, default=1000, help="unjudged documents added (-1: the whole corpus)")
    parser.add_argument("--speed-docs", type=int, default=256)
    parser.add_argument("--rerank-queries", type=int, default=50)
    parser.add_argument("--speed-queries", type=int, default=8)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-speed", action="store_true", help="measure nDCG@10 only (no timed rounds)")
    parser.add_argument("--skip-ndcg", action="store_true", help="time only (nDCG@10 of no system)")
    parser.add_argument("--st-onnx-python", default=None, help="a Python with optimum[onnxruntime] (none: skip those rows)")
    parser.add_argument("--work", default=None, help="a folder shared with the child run (internal)")
    parser.add_argument("--child", action="store_true", help="run sentence-transformers' ONNX rows here (internal)")
    parser.add_argument("--out", default=None, help="write the rows as JSON into this folder")
    parser.add_argument("--out-name", default="onnx_cpu.json", help="the JSON file's name in --out")
    args = parser.parse_args()

    import torch

    data = scifact_subset(args.data, args.queries, args.extra_docs)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-onnx-"))
    if args.child:
        st_onnx_part(args, data, work)
        return
    encoders, scorers = boltir_systems(work)
    rows = measure(args, data, work, encoders, scorers)
    if args.st_onnx_python:
        child = [a for a in sys.argv[1:] if a not in ("--child",)] + ["--child", "--work", str(work)]
        for row in run_child(["-m", "benchmarks.onnx_cpu", *child], python=args.st_onnx_python, timeout=3600):
            rows.append({**row, "environment": "optimum"})
    summary = {"machine": machine("cpu"), "threads": torch.get_num_threads(), "versions": versions(("torch", "transformers",
               "sentence-transformers", "onnxruntime", "onnx", "boltir")), "corpus_docs": len(data["docs"]),
               "queries": len(data["queries"]), "args": vars(args), "rows": rows}
    print(f"{'part':8} {'system':18} {'per s':>9} {'vs st-torch':>12} {'nDCG@10':>8}")
    for row in rows:
        if "system" in row:
            speed = f"{row['per_s']:9.1f} {row['vs_st-torch']:12.2f}" if "per_s" in row else f"{'-':>9} {'-':>12}"
            quality = f"{row['ndcg10']:8.4f}" if row.get("ndcg10") is not None else f"{'-':>8}"
            print(f"{row['part']:8} {row['system']:18} {speed} {quality}{'  (optimum env)' if row.get('environment') else ''}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / args.out_name).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
