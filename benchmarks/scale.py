"""Scale: ``Trainer.index`` over an N-document corpus streamed to shards, then Faiss engines built from the shards.

The corpus is SciFact's 5,183 documents made into N distinct ones with fresh ids: document ``i`` keeps SciFact
document ``d = i mod 5183``'s title and first ``splice_point`` words (half of them, at most ``HEAD_WORDS``) and takes
the words of document ``p = (d + c * 2089) mod 5183`` (``c = i div 5183``) from ``p``'s splice point on, so no two
are equal while lengths and vocabulary stay SciFact's. Plain repeats would give identical vectors, and so would
heads too long for the model's window: with half of each document's words as its head (the splice until
2026-12-06), 11% of the heads filled all 256 tokens, every copy of such a head was cut to the same text, and its
~193 copies in 1M documents had bitwise-equal vectors (exact top-10 then an arbitrary pick among them). Capped at
64 words, every head ends within ~150 tokens. Copies of one head still form tight clusters of near-equal scores,
so recall is reported twice: strict (the exact top-10 ids) and tie-aware (an id counts when its exact score is
within ``TIE_EPSILON`` of the 10th: ann-benchmarks' convention).

Per corpus size it records: ``Trainer.index`` time and docs/s (encoding + the flat index written from the shards),
host memory (RSS and PSS summed over the process and its DataLoader workers), GPU memory and utilisation sampled
over time, then for each engine (Flat, IVF-PQ with and without refinement, HNSW, built from the same shards with
``build_index``) build time, size on disk, search latency and recall@10 against exact search. Exact top-10s come
from the shards by a brute-force matrix product on the device (no Flat search needed at 10M). Search latency:
``single`` is one query per ``search`` call, timed alone (median and p99 of ``--single-queries``; Faiss parallelises
over the queries of a call, so one query runs on one core); ``batch`` is all 1,000 queries in one call on every
core, divided by 1,000 (throughput, not latency). ``--ceilings`` first measures the two limits of the indexing
pipeline apart: host tokenisation (``--num-workers`` processes tokenising and packing batches, nothing else) and
the GPU forward pass alone (pre-tokenised batches). ``--sizes 1000000,auto``: ``auto`` is the largest size that
fits the rest of ``--budget-s`` at the measured rate. Results: ``results.json``, ``memory-N.csv`` per size and
``scale.png`` in ``--out``.

Run: ``python -m benchmarks.scale --model DIR --data SCIFACT_DIR --sizes 1000000,auto --device cuda --out OUT``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SCIFACT_DOCS = 5183
PARTNER_STEP = 2089  # coprime to 5,183: the partner of a document differs in every copy
HEAD_WORDS = 64  # a head's words at most: title + 64 words stay well inside a 256-token window


def splice_point(words: int) -> int:
    """Where a document of ``words`` words is cut: its head is the words before, a spliced tail the words after."""
    return min(words // 2, HEAD_WORDS)


# -- corpus ----------------------------------------------------------------------------------------
def write_corpus(data_dir: str | os.PathLike[str], count: int, target: Path) -> float:
    """Write ``count`` spliced SciFact documents to ``target`` (see the module docstring); returns seconds."""
    started = time.perf_counter()
    records = [json.loads(line) for line in (Path(data_dir) / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    heads, tails = [], []
    for record in records:
        words = record["text"].split()
        half = splice_point(len(words))
        title = json.dumps(record.get("title") or "")
        heads.append(('"title": ' + title + ', "text": ' + json.dumps(" ".join(words[:half]))[:-1]).encode())
        tails.append((" " + json.dumps(" ".join(words[half:]))[1:] + "}\n").encode())
    size = len(records)
    with open(target, "wb", buffering=1 << 24) as handle:
        for copy in range(-(-count // size)):
            stop = min(size, count - copy * size)
            handle.write(b"".join(
                b'{"_id": "%d-%d", ' % (d, copy) + heads[d] + tails[(d + copy * PARTNER_STEP) % size] for d in range(stop)
            ))
    return time.perf_counter() - started


def read_queries(data_dir: str | os.PathLike[str], count: int) -> list[str]:
    lines = (Path(data_dir) / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()][:count]


# -- memory over time ------------------------------------------------------------------------------
class MemorySampler(threading.Thread):
    """Samples host memory (this process and its children: the DataLoader workers) and GPU memory."""

    def __init__(self, interval: float, device: str) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process, self.interval, self.cuda = psutil.Process(), interval, device.startswith("cuda")
        self.rows: list[dict[str, Any]] = []
        self.phase = "start"
        self.csv_path: Path | None = None
        self.started = time.perf_counter()
        self._halt = threading.Event()

    def sample(self) -> dict[str, Any]:
        import psutil
        import torch

        rss = pss = 0
        processes = [self.process, *self.process.children(recursive=True)]
        for process in processes:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
        row = {"t": round(time.perf_counter() - self.started, 2), "phase": self.phase, "processes": len(processes),
               "rss_mib": rss / 2**20, "pss_mib": pss / 2**20, "gpu_allocated_mib": 0.0, "gpu_used_mib": 0.0, "gpu_util_pct": -1}
        if self.cuda:
            free, total = torch.cuda.mem_get_info()
            row.update(gpu_allocated_mib=torch.cuda.memory_allocated() / 2**20, gpu_used_mib=(total - free) / 2**20)
            try:
                row["gpu_util_pct"] = torch.cuda.utilization()  # the driver's busy share over its last sample period
            except Exception:  # no NVML
                row["gpu_util_pct"] = -1
        return row

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.rows.append(self.sample())
            if self.csv_path is not None and len(self.rows) % 30 == 0:  # a run stopped at its time limit keeps these
                self.write_csv(self.csv_path)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, field: str, phase: str | None = None) -> float:
        values = [row[field] for row in self.rows if phase is None or row["phase"] == phase]
        return max(values, default=0.0)

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]) if self.rows else ["t"])
            writer.writeheader()
            writer.writerows(self.rows)


def _progress_callback(sampler: MemorySampler, every_s: float = 15.0):
    import lightning.pytorch as pl

    class Progress(pl.Callback):
        """Marks the encoding phase for the sampler and prints docs/s now and then (the bar is off in logs)."""

        def __init__(self) -> None:
            self.docs, self.start, self.end, self.last = 0, 0.0, 0.0, 0.0

        def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
            sampler.phase, self.start = "encode", time.perf_counter()
            self.last = self.start

        def on_predict_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.docs += len(outputs.ids)
            now = time.perf_counter()
            if now - self.last > every_s:
                print(f"  encoded {self.docs:,} docs in {now - self.start:.0f} s ({self.docs / (now - self.start):,.0f} docs/s)", flush=True)
                self.last = now

        def on_predict_end(self, trainer: Any, pl_module: Any) -> None:  # runs before IndexCallback's (added later)
            sampler.phase, self.end = "build-flat", time.perf_counter()

    return Progress()


# -- engines ---------------------------------------------------------------------------------------
def engine_specs(args: argparse.Namespace, names: str) -> dict[str, dict[str, Any]]:
    """Engine name → Faiss config fields and the search settings swept. ``np``: no polysemous training (codes
    ordered for Hamming filtering we do not use; it costs about 2 s per sub-quantizer on one core). ``-sq8`` /
    ``-fp16`` / ``-rflat``: the PQ candidates re-ranked with 1-byte, 2-byte or float32 codes (``refine``)."""
    lists = args.ivf_lists
    probes = [{"nprobe": p} for p in (16, 32, 64, 128)]
    refined = [{"nprobe": p, "k_factor": k} for p in (32, 64, 128, 256, 512) for k in (2, 8)]  # probing limits recall, not PQ (CPU sweep)
    specs: dict[str, dict[str, Any]] = {"hnsw32": {"factory": "HNSW32", "sweep": [{"ef_search": e} for e in (64, 128, 256, 512)]}}
    for m in (48, 96, 192):
        specs[f"ivf-pq{m}"] = {"factory": f"IVF{lists},PQ{m}np", "sweep": probes}
        for suffix, refine in (("sq8", "SQ8"), ("fp16", "SQfp16"), ("rflat", "Flat")):
            specs[f"ivf-pq{m}-{suffix}"] = {"factory": f"IVF{lists},PQ{m}np", "refine": refine, "sweep": refined}
    return {name: specs[name] for name in names.split(",") if name}


class ExactTopK:
    """Every query's exact top-k ids, and the ids it counts as correct: those scoring within ``TIE_EPSILON`` of its
    k-th exact score (ann-benchmarks' convention). Where many documents tie at the k-th place (a 256-token window
    that cuts two documents to the same text gives equal vectors) the exact top-k is one arbitrary pick of them, and
    strict recall counts an engine's equally good pick as a miss."""

    def __init__(self, ids: list[list[str]], within: list[set[str]], seconds: float) -> None:
        self.ids, self.within, self.seconds = ids, within, seconds

    def __len__(self) -> int:
        return len(self.ids)

    def recall(self, found: list[list[str]], k: int) -> tuple[float, float]:
        """Strict recall@k (the exact top-k ids found) and tie-aware recall@k (found ids within ε of the k-th score)."""
        strict = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, self.ids)]
        ties = [sum(1 for doc in a[:k] if doc in good) / k for a, good in zip(found, self.within)]
        return float(np.mean(strict)), float(np.mean(ties))


TIE_EPSILON = 1e-3  # on cosine scores; bf16 vectors carry ~3 significant digits, so closer scores are not ordered


def exact_top_k(shard_dir: Path, queries: Any, k: int, device: str, epsilon: float = TIE_EPSILON) -> ExactTopK:
    """Exact top-k by a matrix product over the shards on ``device`` (inner product: the vectors are normalised);
    a second pass gathers every id within ``epsilon`` of each query's k-th score (read again rather than kept:
    the scores of every document for every query do not fit in memory at 10M)."""
    import torch

    from boltir.index.shards import complete_shards

    started = time.perf_counter()
    q = torch.as_tensor(queries, dtype=torch.float32, device=device)
    best_scores = torch.full((len(q), k), -float("inf"), device=device)
    best_rows = torch.zeros((len(q), k), dtype=torch.long, device=device)
    ids: list[str] = []

    def shard_scores():
        offset = 0
        for shard in complete_shards(shard_dir):
            vectors = torch.from_numpy(np.array(shard.vectors(), dtype=np.float32)).to(device)  # a copy: the map is read-only
            shard_ids = shard.ids()
            yield offset, shard_ids, q @ vectors.T
            offset += len(shard_ids)

    for offset, shard_ids, scores in shard_scores():
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        merged_scores = torch.cat([best_scores, top.values], 1)
        merged_rows = torch.cat([best_rows, top.indices + offset], 1)
        order = merged_scores.topk(k, dim=1).indices
        best_scores, best_rows = merged_scores.gather(1, order), merged_rows.gather(1, order)
        ids.extend(shard_ids)
    threshold = best_scores[:, -1:] - epsilon
    within: list[set[str]] = [set() for _ in range(len(q))]
    for offset, _, scores in shard_scores():
        for query, row in (scores >= threshold).nonzero().tolist():
            within[query].add(ids[offset + row])
    rows = best_rows.cpu().tolist()
    return ExactTopK([[ids[r] for r in row] for row in rows], within, time.perf_counter() - started)


def tie_counts(exact: ExactTopK) -> dict[str, float]:
    """How many documents each query's k-th place is shared among (1 + those within ε beyond the top k)."""
    counts = [len(good) for good in exact.within]
    return {"mean_within_epsilon": float(np.mean(counts)), "max_within_epsilon": int(max(counts)),
            "queries_with_ties_at_k": int(sum(c > len(ids) for c, ids in zip(counts, exact.ids))), "epsilon": TIE_EPSILON}


def directory_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def search_figures(searcher: Any, queries: Any, exact: ExactTopK | None, k: int, single: int) -> tuple[dict[str, Any], list[list[str]]]:
    """Batched and one-at-a-time search times, strict and tie-aware recall@k against ``exact``."""
    started = time.perf_counter()
    _, ids = searcher.search_arrays(queries, k)
    batched = time.perf_counter() - started
    times = []
    for row in range(min(single, len(queries))):
        started = time.perf_counter()
        searcher.search_arrays(queries[row : row + 1], k)
        times.append(time.perf_counter() - started)
    figures: dict[str, Any] = {"batch_s": batched, "batch_ms_per_query": 1000 * batched / len(queries), "single_query_ms_median": 1000 * statistics.median(times),
                               "single_query_ms_p99": 1000 * float(np.percentile(times, 99)), "single_queries": len(times),
                               "latency": "single: one query per search call, alone (one core); batch: 1,000 queries in one call, all cores, / 1,000"}
    if exact is not None:
        figures["recall_at_10"], figures["recall_at_10_ties"] = exact.recall(ids, k)
    return figures, ids


# -- the pipeline's two limits, measured apart ------------------------------------------------------
_TOKENIZE: Any = None  # the forked pool's batch transform (inherited, not pickled)


def _tokenize_count(texts: list[str]) -> int:
    from boltir.data.batches import DocBatch

    _TOKENIZE(DocBatch([str(i) for i in range(len(texts))], texts))
    return len(texts)


def ceilings(args: argparse.Namespace, module: Any, corpus: Path, docs: int = 61_440) -> dict[str, Any]:
    """Host tokenisation alone (``workers`` forked processes running the DataLoader workers' batch transform,
    results dropped) and the GPU forward pass alone (pre-tokenised batches, timed to the last kernel)."""
    import multiprocessing
    from itertools import islice

    import torch

    from boltir import DocDataset
    from boltir.data.batches import DocBatch
    from boltir.modules.bi_encoder import TokenizeBatch
    from boltir.modules.device import runs_packed

    global _TOKENIZE
    texts = [doc.text for doc in islice(iter(DocDataset(corpus)), docs)]
    texts.sort(key=len, reverse=True)  # as the loader's length-sorted windows give them
    batches = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    device = torch.device(args.device)
    pack = runs_packed(module.model, device, next(module.parameters()).dtype)
    _TOKENIZE = TokenizeBatch(module.model, args.batch_size, pack=pack)
    workers = args.num_workers or max(1, min(16, (os.cpu_count() or 2) - 1))
    out: dict[str, Any] = {"docs": len(texts), "workers": workers, "packed": pack}
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_tokenize_count, batches[:workers])  # warm-up: every worker's first batch
        started = time.perf_counter()
        done = sum(pool.imap_unordered(_tokenize_count, batches))
        out["host_tokenize_docs_per_s"] = done / (time.perf_counter() - started)
    started = time.perf_counter()
    _TOKENIZE(DocBatch(["x"] * len(batches[0]), batches[0]))
    out["one_core_tokenize_docs_per_s"] = len(batches[0]) / (time.perf_counter() - started)
    encoded = [_TOKENIZE(DocBatch([str(i) for i in range(len(b))], b)).encoding for b in batches[:24]]
    if device.type == "cuda":
        encoded = [e.pin_memory() if hasattr(e, "pin_memory") else {k: v.pin_memory() for k, v in e.items()} for e in encoded]
        with torch.inference_mode():
            for tokens in encoded[:3]:  # warm-up
                module.embed_docs([], encoding=tokens)
            torch.cuda.synchronize()
            started = time.perf_counter()
            for tokens in encoded:
                module.embed_docs([], encoding=tokens)
            torch.cuda.synchronize()
        out["gpu_forward_docs_per_s"] = sum(len(b) for b in batches[:24]) / (time.perf_counter() - started)
    print(f"ceilings: host tokenisation {out['host_tokenize_docs_per_s']:,.0f} docs/s with {workers} processes "
          f"({out['one_core_tokenize_docs_per_s']:,.0f} on one), GPU forward alone {out.get('gpu_forward_docs_per_s', 0):,.0f} docs/s "
          f"(packed: {pack})", flush=True)
    return out


# -- one corpus size -------------------------------------------------------------------------------
def run_size(args: argparse.Namespace, size: int, module: Any, queries: Any, work: Path, deadline: float, engine_names: str) -> dict[str, Any]:
    import logging

    import torch

    from boltir import DataModule, DocDataset, FaissIndexConfig, Trainer, open_searcher
    from boltir.callbacks.index import build_index

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = work / "corpus.jsonl"
    result: dict[str, Any] = {"docs": size, "corpus_write_s": write_corpus(args.data, size, corpus),
                              "corpus_mib": corpus.stat().st_size / 2**20}
    print(f"[{size:,}] corpus written in {result['corpus_write_s']:.1f} s ({result['corpus_mib']:,.0f} MiB)", flush=True)
    if args.ceilings and not getattr(args, "_ceilings_done", False):
        result["ceilings"] = ceilings(args, module, corpus)
        args._ceilings_done = True

    sampler = MemorySampler(args.sample_s, args.device)
    sampler.csv_path = Path(args.out) / f"memory-{size}.csv"
    sampler.start()
    progress = _progress_callback(sampler)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(
        accelerator="gpu" if args.device.startswith("cuda") else "cpu", devices=1,
        precision={"fp32": "32-true", "bf16": "bf16-true"}[args.precision], logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[progress],
    )
    data = DataModule(DocDataset(corpus), inference_batch_size=args.batch_size, num_workers=args.num_workers)
    flat_dir = work / "flat"
    started = time.perf_counter()
    callback = trainer.index(module, data, flat_dir, FaissIndexConfig(factory="Flat"), shard_size=args.shard_size, keep_shards=True)
    index_s = time.perf_counter() - started
    sampler.phase = "engines"
    result.update(
        index_s=index_s, docs_per_s=size / index_s, encode_s=progress.end - progress.start,
        encode_docs_per_s=size / (progress.end - progress.start), flat_build_s=index_s - (progress.end - progress.start),
        workers=data._workers(), batch_size=args.batch_size, shard_size=args.shard_size,
        peak_encode_rss_mib=sampler.peak("rss_mib", "encode"), peak_encode_pss_mib=sampler.peak("pss_mib", "encode"),
        peak_gpu_allocated_mib=torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None,
        shards_mib=directory_mib(callback.shard_dir),
    )
    utilisation = [row["gpu_util_pct"] for row in sampler.rows if row["phase"] == "encode" and row["gpu_util_pct"] >= 0]
    result["mean_encode_gpu_util_pct"] = statistics.mean(utilisation) if utilisation else -1
    print(f"[{size:,}] Trainer.index {index_s:.1f} s = {result['docs_per_s']:,.0f} docs/s (encoding {result['encode_docs_per_s']:,.0f} docs/s, "
          f"{result['workers']} workers); peak host RSS while encoding {result['peak_encode_rss_mib']:,.0f} MiB, "
          f"PSS {result['peak_encode_pss_mib']:,.0f} MiB", flush=True)
    corpus.unlink()  # disk: the shards and indexes are what follow
    sampler.write_csv(Path(args.out) / f"memory-{size}.csv")  # what a run stopped at its time limit keeps
    args.checkpoint(result)

    sampler.phase = "exact"
    exact = exact_top_k(callback.shard_dir, queries, 10, args.device)
    result["exact_s"] = exact.seconds
    result["exact_tied_docs"] = tie_counts(exact)
    ties = result["exact_tied_docs"]
    print(f"[{size:,}] exact top-10 of {len(exact)} queries from the shards on {args.device} in {result['exact_s']:.1f} s; "
          f"{ties['queries_with_ties_at_k']} queries have more than 10 documents within {TIE_EPSILON} of their 10th score "
          f"(mean {ties['mean_within_epsilon']:.1f}, max {ties['max_within_epsilon']})", flush=True)
    engines: dict[str, Any] = {"flat": {"factory": "Flat", "build_s": result["flat_build_s"], "disk_mib": directory_mib(flat_dir), "search": []}}
    if size <= args.flat_search_max_docs:
        figures, _ = search_figures(open_searcher(flat_dir), queries, exact, 10, args.single_queries_flat)
        engines["flat"]["search"].append({"settings": {}, **figures})
    shutil.rmtree(flat_dir, ignore_errors=True)  # disk: 4 bytes a dimension, as the shards
    for name, spec in engine_specs(args, engine_names).items():
        left = deadline - time.perf_counter()
        if name.startswith("hnsw") and size > args.hnsw_max_docs:
            engines[name] = {"factory": spec["factory"], "skipped": f"size above --hnsw-max-docs {args.hnsw_max_docs:,}"}
            continue
        if left < args.reserve_s:
            engines[name] = {"factory": spec["factory"], "skipped": f"{left:.0f} s of the budget left"}
            continue
        sampler.phase = f"build-{name}"
        config = FaissIndexConfig(factory=spec["factory"], train_size=args.train_size, refine=spec.get("refine"))
        started = time.perf_counter()
        index_dir = build_index(callback.shard_dir, work / name, config, module.model)
        build_s = time.perf_counter() - started
        sampler.phase = f"search-{name}"
        rows = []
        for settings in json.loads(args.sweep) if args.sweep else spec["sweep"]:
            figures, _ = search_figures(open_searcher(index_dir, **settings), queries, exact, 10, args.single_queries)
            rows.append({"settings": settings, **figures})
            print(f"[{size:,}] {name} {settings}: recall@10 {figures['recall_at_10']:.4f} (tie-aware {figures['recall_at_10_ties']:.4f}), "
                  f"{figures['single_query_ms_median']:.2f} ms/query (batched {figures['batch_ms_per_query']:.3f})", flush=True)
        engines[name] = {"factory": spec["factory"], "refine": spec.get("refine"), "build_s": build_s, "disk_mib": directory_mib(index_dir), "search": rows}
        args.checkpoint({**result, "engines": engines})
        print(f"[{size:,}] {name} built in {build_s:.1f} s, {engines[name]['disk_mib']:,.0f} MiB on disk", flush=True)
        shutil.rmtree(index_dir, ignore_errors=True)
    sampler.stop()
    sampler.write_csv(Path(args.out) / f"memory-{size}.csv")
    result.update(engines=engines, peak_rss_mib=sampler.peak("rss_mib"), peak_pss_mib=sampler.peak("pss_mib"),
                  peak_gpu_used_mib=sampler.peak("gpu_used_mib"))
    shutil.rmtree(work, ignore_errors=True)
    return result


def auto_size(done: dict[str, Any], left_s: float, args: argparse.Namespace) -> int:
    """The largest size (a multiple of --auto-step, at most --max-docs) whose run fits ``left_s`` at the first size's
    per-document costs of the steps it repeats (all grow with the corpus but IVF training): writing the corpus,
    ``Trainer.index``, the flat searches and the ``--auto-engines``."""
    per_doc = (done["corpus_write_s"] + done["index_s"]) / done["docs"]  # the flat build is inside index_s
    fixed = 0.0
    for name, engine in done["engines"].items():
        if "build_s" not in engine or (name != "flat" and name not in args.auto_engines.split(",")):
            continue
        searching = sum(row["batch_s"] + row["single_query_ms_median"] * row["single_queries"] / 1000 for row in engine["search"])
        building = 0.0 if name == "flat" else engine["build_s"]
        per_doc += (building * 0.8 + searching) / done["docs"]  # IVF training (~20% of a build) does not grow
        fixed += building * 0.2
    size = int((left_s - fixed - args.reserve_s) / per_doc / args.auto_step) * args.auto_step
    return max(0, min(size, args.max_docs))


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    for result in results:
        rows = list(csv.DictReader(open(out / f"memory-{result['docs']}.csv")))
        if not rows:
            continue
        t = [float(r["t"]) for r in rows]
        label = f"{result['docs']:,} docs"
        axes[0].plot(t, [float(r["pss_mib"]) / 1024 for r in rows], label=f"{label} (PSS)")
        axes[0].plot(t, [float(r["rss_mib"]) / 1024 for r in rows], linestyle=":", label=f"{label} (RSS)")
        axes[1].plot(t, [float(r["gpu_used_mib"]) / 1024 for r in rows], label=label)
        axes[2].plot(t, [float(r.get("gpu_util_pct", -1)) for r in rows], label=label, linewidth=0.8)
        encode_end = next((float(r["t"]) for r in rows if r["phase"] not in ("start", "encode")), None)
        if encode_end is not None:
            axes[0].axvline(encode_end, color="grey", linewidth=0.6)
    axes[0].set(title="host memory: process + DataLoader workers (GiB)", xlabel="seconds (line: encoding ends)")
    axes[1].set(title="GPU memory in use (GiB)", xlabel="seconds")
    axes[2].set(title="GPU utilisation (%, NVML)", xlabel="seconds", ylim=(0, 105))
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "scale.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 directory (or a model of its shape)")
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--sizes", default="1000000,auto", help="corpus sizes; 'auto': the largest that fits the budget")
    parser.add_argument("--max-docs", type=int, default=10_000_000)
    parser.add_argument("--auto-step", type=int, default=500_000, help="'auto' sizes are multiples of this")
    parser.add_argument("--budget-s", type=float, default=540, help="wall seconds for the whole run")
    parser.add_argument("--reserve-s", type=float, default=25, help="left unplanned for exits and writing results")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--doc-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: DataModule's)")
    parser.add_argument("--shard-size", type=int, default=65_536)
    parser.add_argument("--engines", default="ivf-pq96-sq8,ivf-pq96-fp16", help="see engine_specs: ivf-pq{48,96,192}[-sq8|-fp16|-rflat], hnsw32")
    parser.add_argument("--auto-engines", default="ivf-pq96-sq8", help="engines built at the 'auto' size")
    parser.add_argument("--ceilings", action="store_true", help="first measure host tokenisation and the GPU forward pass apart")
    parser.add_argument("--flat-search-max-docs", type=int, default=2_500_000, help="Flat search is timed up to this size (exact top-10s come from the shards)")
    parser.add_argument("--ivf-lists", type=int, default=4096)
    parser.add_argument("--sweep", help='search settings for every engine instead of its own sweep, as JSON: \'[{"nprobe": 128, "k_factor": 8}]\'')
    parser.add_argument("--train-size", type=int, default=163_840, help="IVF/PQ training vectors (40 per list of 4,096)")
    parser.add_argument("--hnsw-max-docs", type=int, default=1_000_000, help="HNSW is built up to this size only (its build is slow)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single-queries", type=int, default=200, help="queries timed one at a time per setting")
    parser.add_argument("--single-queries-flat", type=int, default=20)
    parser.add_argument("--sample-s", type=float, default=1.0)
    parser.add_argument("--work", default="/tmp/boltir-scale")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    deadline = started + args.budget_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import faiss
    import torch

    from boltir import BiEncoderModule

    from .common import dtype_of, machine, versions

    module = BiEncoderModule(args.model, config={"doc_pooling": "mean", "query_pooling": "mean", "similarity": "cosine",
                                                 "normalize": True, "doc_length": args.doc_length})
    module = module.to(args.device, dtype_of(args.precision)).eval()
    queries = module.encode_queries(read_queries(args.data, args.queries)).float().cpu()
    summary: dict[str, Any] = {"machine": machine(args.device), "versions": versions(), "args": dict(vars(args)),
                               "faiss_threads": faiss.omp_get_max_threads(), "sizes": []}
    def checkpoint(partial: dict[str, Any]) -> None:
        (out / "results.json").write_text(json.dumps({**summary, "sizes": [*summary["sizes"], {**partial, "partial": True}]}, indent=1))

    args.checkpoint = checkpoint
    for word in args.sizes.split(","):
        if word == "auto":
            if not summary["sizes"]:
                raise SystemExit("--sizes: 'auto' needs a measured size before it")
            size = auto_size(summary["sizes"][-1], deadline - time.perf_counter(), args)
            print(f"auto size: {size:,} documents fit the {deadline - time.perf_counter():.0f} s left", flush=True)
            if size <= summary["sizes"][-1]["docs"]:
                continue
        else:
            size = int(word)
        engine_names = args.auto_engines if word == "auto" else args.engines
        summary["sizes"].append(run_size(args, size, module, queries, Path(args.work), deadline, engine_names))
        (out / "results.json").write_text(json.dumps(summary, indent=1))
    summary["total_s"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    plot(summary["sizes"], out)
    print_table(summary)


def print_table(summary: dict[str, Any]) -> None:
    for size in summary["sizes"]:
        c = size.get("ceilings")
        if c:
            print(f"\nceilings ({c['docs']:,} docs): host tokenisation {c['host_tokenize_docs_per_s']:,.0f} docs/s with {c['workers']} processes "
                  f"({c['one_core_tokenize_docs_per_s']:,.0f} on one); GPU forward alone {c.get('gpu_forward_docs_per_s', 0):,.0f} docs/s")
    print("\n| docs | Trainer.index s | docs/s | encode docs/s | peak host PSS / RSS while encoding (MiB) | peak GPU allocated (MiB) | mean GPU util while encoding |")
    print("|---|---|---|---|---|---|---|")
    for s in summary["sizes"]:
        print(f"| {s['docs']:,} | {s['index_s']:.1f} | {s['docs_per_s']:,.0f} | {s['encode_docs_per_s']:,.0f} | "
              f"{s['peak_encode_pss_mib']:,.0f} / {s['peak_encode_rss_mib']:,.0f} | {s['peak_gpu_allocated_mib'] or 0:,.0f} | {s.get('mean_encode_gpu_util_pct', -1):.0f}% |")
    print("\n| docs | engine | build s | disk MiB | settings | recall@10 | recall@10 tie-aware | ms/query, one query per call (median / p99) | ms/query, batch of 1,000 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in summary["sizes"]:
        for name, engine in s["engines"].items():
            label = f"{name} ({engine['factory']}{', refine ' + engine['refine'] if engine.get('refine') else ''})"
            if "skipped" in engine:
                print(f"| {s['docs']:,} | {label} | skipped: {engine['skipped']} | | | | | | |")
                continue
            if not engine["search"]:
                print(f"| {s['docs']:,} | {label} | {engine['build_s']:.1f} | {engine['disk_mib']:,.0f} | not searched | | | | |")
            for row in engine["search"]:
                print(f"| {s['docs']:,} | {label} | {engine['build_s']:.1f} | {engine['disk_mib']:,.0f} | {row['settings'] or '-'} | "
                      f"{row['recall_at_10']:.4f} | {row['recall_at_10_ties']:.4f} | {row['single_query_ms_median']:.2f} / {row['single_query_ms_p99']:.2f} | {row['batch_ms_per_query']:.3f} |")


if __name__ == "__main__":
    main()
