"""Search overhead of boltir's searcher over calling Faiss directly, on synthetic vectors.

For each index type and collection size, one index is built through boltir's indexer and written to disk;
raw Faiss loads the same file. Both answer the same queries with the same settings (nprobe, efSearch):
  raw     ``index.search(queries, k)`` on normalised float32 numpy queries (what Faiss needs)
  boltir  ``FaissSearcher.search(query_tensor, k)`` on the model's output tensor: it normalises a copy,
          searches, and maps positions to document ids
Throughput: one batch of ``--queries`` queries. Latency: one query at a time, ``--latency-queries`` of them.

Run: ``python -m benchmarks.search --sizes 10000,100000,1000000 --indexes Flat,IVF,HNSW32``
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import emit, versions


class VectorsOnly:
    """What an indexer asks of a model, for vectors that come from no model (a cosine, 384-d bi-encoder)."""

    representation = "dense"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def describe(self) -> dict[str, Any]:
        return {"name_or_path": "synthetic", "class": "VectorsOnly", "config": {}}

    def index_fingerprint(self) -> dict[str, Any]:
        return {"dim": self.dim, "similarity": "cosine", "doc_pooling": "mean", "normalize": True, "backbone": "none"}


def factory_for(kind: str, size: int) -> str:
    if kind == "IVF":
        return f"IVF{max(16, int(4 * math.sqrt(size)))},Flat"
    return kind


def clustered_vectors(count: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """Vectors around random centres (closer to real embeddings than uniform noise, so IVF/HNSW behave)."""
    picks = rng.integers(0, len(centres), count)
    vectors = centres[picks] + 0.5 * rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_one(kind: str, size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import faiss
    import torch

    from boltir import FaissIndexConfig, open_searcher

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1024, args.dim), dtype=np.float32)
    factory = factory_for(kind, size)
    config = FaissIndexConfig(factory=factory, train_size=min(size, 262_144), nprobe=32 if kind == "IVF" else None,
                              ef_search=128 if kind.startswith("HNSW") else None)
    directory = workdir / f"{kind}-{size}"
    indexer = config.indexer(directory, VectorsOnly(args.dim))
    started = time.perf_counter()
    for start in range(0, size, 65_536):
        count = min(65_536, size - start)
        indexer.add([f"doc{start + i}" for i in range(count)], torch.from_numpy(clustered_vectors(count, args.dim, rng, centres)))
    indexer.finish()
    build_s = time.perf_counter() - started

    searcher = open_searcher(directory)
    raw = faiss.read_index(str(directory / "index.faiss"))
    if kind == "IVF":
        faiss.extract_index_ivf(raw).nprobe = 32
    if kind.startswith("HNSW"):
        raw.hnsw.efSearch = 128
    queries = torch.from_numpy(clustered_vectors(args.queries, args.dim, rng, centres) * 2.0)  # unnormalised
    raw_queries = queries.numpy() / np.linalg.norm(queries.numpy(), axis=1, keepdims=True)
    k = args.k

    raw_scores, raw_positions = raw.search(raw_queries, k)
    scores, ids = searcher.search(queries, k)
    agree = float(np.mean([ids[i][0] == f"doc{raw_positions[i, 0]}" for i in range(len(ids))]))

    raw_batch = _median_time(lambda: raw.search(raw_queries, k), args.repeats)
    boltir_batch = _median_time(lambda: searcher.search(queries, k), args.repeats)
    n = args.latency_queries
    raw_single = _median_time(lambda: [raw.search(raw_queries[i : i + 1], k) for i in range(n)], args.repeats) / n
    boltir_single = _median_time(lambda: [searcher.search(queries[i : i + 1], k) for i in range(n)], args.repeats) / n
    return {
        "row": "search",
        "index": factory,
        "kind": kind,
        "docs": size,
        "k": k,
        "queries": args.queries,
        "build_s": build_s,
        "raw_batch_s": raw_batch,
        "boltir_batch_s": boltir_batch,
        "raw_qps": args.queries / raw_batch,
        "boltir_qps": args.queries / boltir_batch,
        "batch_overhead": boltir_batch / raw_batch - 1,
        "raw_latency_ms": raw_single * 1e3,
        "boltir_latency_ms": boltir_single * 1e3,
        "latency_overhead": boltir_single / raw_single - 1,
        "top1_agreement": agree,
        "threads": faiss.omp_get_max_threads(),
        "versions": versions(("faiss-cpu", "numpy", "boltir")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--indexes", default="Flat,IVF,HNSW32", help="Flat, IVF (4*sqrt(N) lists, nprobe 32), HNSW32 (efSearch 128)")
    parser.add_argument("--max-hnsw", type=int, default=100_000, help="largest collection for HNSW (its build is slow)")
    parser.add_argument("--max-ivf-min", type=int, default=100_000, help="smallest collection for IVF")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.indexes.split(","):
            if kind.startswith("HNSW") and size > args.max_hnsw or kind == "IVF" and size < args.max_ivf_min:
                continue
            emit(bench_one(kind, size, args, workdir))


if __name__ == "__main__":
    main()
