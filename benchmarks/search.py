"""Search overhead of boltir's searcher over calling the engine directly, on synthetic vectors.

For each index type and collection size, one index is built through boltir's indexer and written to disk;
the raw engine loads the same file. Both answer the same queries with the same settings:
  Faiss (dense, 384-d; nprobe, efSearch)
    raw     ``index.search(queries, k)`` on normalised float32 numpy queries (what Faiss needs)
    boltir  ``FaissSearcher.search(query_tensor, k)`` on the model's output tensor: it normalises a copy,
            searches, and maps positions to document ids
  Seismic (learned sparse over a 30,522-term vocabulary; ``--indexes Seismic``; query_cut, heap_factor)
    raw     ``index.search(...)`` per query on term strings and weights prepared beforehand (what Seismic needs)
    boltir  ``SeismicSearcher.search(query_tensor, k)`` on ``[queries, vocab]`` term weights, as a SPLADE model
            outputs them: it extracts each query's terms, searches, and maps positions to document ids
Throughput: one batch of ``--queries`` queries. Latency: one query at a time, ``--latency-queries`` of them.

Run: ``python -m benchmarks.search --sizes 10000,100000,1000000 --indexes Flat,IVF,HNSW32,Seismic``
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


class TermWeightsOnly(VectorsOnly):
    """What an indexer asks of a model, for sparse term weights that come from no model (a SPLADE-like one)."""

    representation = "sparse"

    def index_fingerprint(self) -> dict[str, Any]:
        return {"dim": self.dim, "similarity": "dot", "doc_pooling": "max", "backbone": "none"}


def zipf_term_weights(count: int, terms: int, vocab: int, rng: np.random.Generator):
    """``[count, vocab]`` torch-sparse term weights, ``terms`` per row drawn with Zipf-like frequencies (as in
    learned sparse vectors: a few terms in most texts, most terms rare)."""
    import torch

    probabilities = 1.0 / (np.arange(vocab) + 10.0)
    probabilities /= probabilities.sum()
    columns = rng.choice(vocab, size=(count, terms), p=probabilities)
    rows = np.repeat(np.arange(count), terms)
    values = np.abs(rng.standard_normal(count * terms)).astype(np.float32) + 0.1
    indices = torch.from_numpy(np.stack([rows, columns.ravel()]))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(values), (count, vocab)).coalesce()


def bench_seismic(size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from boltir import SeismicIndexConfig, open_searcher
    from boltir.index.vectors import sparse_rows

    vocab, rng = 30_522, np.random.default_rng(0)
    config = SeismicIndexConfig()
    directory = workdir / f"Seismic-{size}"
    indexer = config.indexer(directory, TermWeightsOnly(vocab))
    started = time.perf_counter()
    for start in range(0, size, 8_192):
        count = min(8_192, size - start)
        indexer.add([f"doc{start + i}" for i in range(count)], zipf_term_weights(count, args.doc_terms, vocab, rng))
    indexer.finish()
    build_s = time.perf_counter() - started

    searcher = open_searcher(directory)
    raw = searcher.index  # the engine's own index object, loaded from the same file
    queries = zipf_term_weights(args.queries, args.query_terms, vocab, rng).to_dense()
    rows = sparse_rows(queries, vocab, "seismic")
    string_type = searcher.string_type
    prepared = [(terms.astype(str).astype(string_type), np.ascontiguousarray(weights))
                for terms, weights in (rows.row(i) for i in range(len(rows)))]
    k = args.k

    def raw_search(part: range) -> list:
        return [raw.search(str(i), prepared[i][0], prepared[i][1], k=k, query_cut=config.query_cut,
                           heap_factor=config.heap_factor) for i in part]

    first = raw_search(range(len(prepared)))
    _, ids = searcher.search(queries, k)
    agree = float(np.mean([bool(hits) and ids[i][0] == f"doc{int(hits[0][2])}" for i, hits in enumerate(first)]))
    raw_batch = _median_time(lambda: raw_search(range(len(prepared))), args.repeats)
    boltir_batch = _median_time(lambda: searcher.search(queries, k), args.repeats)
    n = args.latency_queries
    raw_single = _median_time(lambda: [raw_search(range(i, i + 1)) for i in range(n)], args.repeats) / n
    boltir_single = _median_time(lambda: [searcher.search(queries[i : i + 1], k) for i in range(n)], args.repeats) / n
    return {
        "row": "search", "index": "Seismic", "kind": "Seismic", "docs": size, "k": k, "queries": args.queries,
        "build_s": build_s, "raw_batch_s": raw_batch, "boltir_batch_s": boltir_batch,
        "raw_qps": args.queries / raw_batch, "boltir_qps": args.queries / boltir_batch,
        "batch_overhead": boltir_batch / raw_batch - 1, "raw_latency_ms": raw_single * 1e3,
        "boltir_latency_ms": boltir_single * 1e3, "latency_overhead": boltir_single / raw_single - 1,
        "top1_agreement": agree, "threads": torch.get_num_threads(),
        "versions": versions(("pyseismic-lsr", "numpy", "boltir")),
    }


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
    parser.add_argument("--indexes", default="Flat,IVF,HNSW32", help="Flat, IVF (4*sqrt(N) lists, nprobe 32), HNSW32 "
                        "(efSearch 128), Seismic (boltir's defaults)")
    parser.add_argument("--doc-terms", type=int, default=120, help="Seismic: terms drawn per document")
    parser.add_argument("--query-terms", type=int, default=20, help="Seismic: terms drawn per query")
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
            emit(bench_seismic(size, args, workdir) if kind == "Seismic" else bench_one(kind, size, args, workdir))


if __name__ == "__main__":
    main()
