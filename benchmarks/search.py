"""Search overhead of boltir's searcher over calling the engine directly, on synthetic vectors.

For each index type and collection size, one index is built through boltir's indexer and written to disk;
the raw engine loads the same file. Both answer the same queries with the same settings:
  Faiss (dense, 384-d; nprobe, efSearch)
    raw     ``index.search(queries, k)`` on normalised float32 numpy queries (what Faiss needs)
    boltir  ``FaissSearcher.search_arrays(query_tensor, k)`` on the model's output tensor: it normalises a copy,
            searches, and maps positions to document ids
  Seismic (learned sparse over a 30,522-term vocabulary; ``--indexes Seismic``; query_cut, heap_factor)
    raw     ``index.search(...)`` per query on term strings and weights prepared beforehand (what Seismic needs)
    boltir  ``SeismicSearcher.search_arrays(query_tensor, k)`` on ``[queries, vocab]`` term weights, as a SPLADE model
            outputs them: it extracts each query's terms, searches, and maps positions to document ids
Throughput: one batch of ``--queries`` queries. Latency: one query at a time, ``--latency-queries`` of them.

Run: ``python -m benchmarks.search --sizes 10000,100000,1000000 --indexes Flat,IVF,HNSW32,Seismic``
(``--out FILE`` also saves the rows as ``benchmarks.run`` does, after every row; ``benchmarks.report`` renders them)
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import emit, machine, versions

if TYPE_CHECKING:
    import torch

    from boltir.models.layers import TokenVectors

    from .run import Results


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

    def raw_search(part: slice) -> list:
        return [raw.search(str(i), prepared[i][0], prepared[i][1], k=k, query_cut=config.query_cut,
                           heap_factor=config.heap_factor) for i in range(len(prepared))[part]]

    first = raw_search(slice(None))
    _, ids = searcher.search_arrays(queries, k)
    agree = float(np.mean([bool(hits) and ids[i][0] == f"doc{int(hits[0][2])}" for i, hits in enumerate(first)]))
    return {
        "row": "search", "index": "Seismic", "kind": "Seismic", "docs": size, "k": k, "build_s": build_s,
        **overhead_timings(raw_search, lambda part: searcher.search_arrays(_part(queries, part), k), args),
        "top1_agreement": agree, "threads": torch.get_num_threads(),
        "versions": versions(("pyseismic-lsr", "numpy", "boltir")),
    }


def _part(queries: Any, part: slice) -> Any:
    """``queries[part]``; all of them as they are (a copy would be timed as boltir's)."""
    return queries if part == slice(None) else queries[part]


def overhead_timings(raw: Callable[[slice], Any], boltir: Callable[[slice], Any], args: argparse.Namespace) -> dict[str, Any]:
    """The raw engine's and boltir's searches of the same queries (``search(part)`` answers ``queries[part]``):
    throughput (all queries in one call) and latency (one query per call, ``--latency-queries`` of them), medians
    of ``--repeats``, and boltir's overhead over the engine."""
    everything = slice(None)
    raw_batch = _median_time(lambda: raw(everything), args.repeats)
    boltir_batch = _median_time(lambda: boltir(everything), args.repeats)
    n = args.latency_queries
    raw_single = _median_time(lambda: [raw(slice(i, i + 1)) for i in range(n)], args.repeats) / n
    boltir_single = _median_time(lambda: [boltir(slice(i, i + 1)) for i in range(n)], args.repeats) / n
    return {
        "queries": args.queries, "raw_batch_s": raw_batch, "boltir_batch_s": boltir_batch,
        "raw_qps": args.queries / raw_batch, "boltir_qps": args.queries / boltir_batch,
        "batch_overhead": boltir_batch / raw_batch - 1, "raw_latency_ms": raw_single * 1e3,
        "boltir_latency_ms": boltir_single * 1e3, "latency_overhead": boltir_single / raw_single - 1,
    }


class TokenVectorsOnly(VectorsOnly):
    """What an indexer asks of a model, for per-token vectors that come from no model (a ColBERT-like one)."""

    representation = "multi-vector"

    def index_fingerprint(self) -> dict[str, Any]:
        return {"dim": self.dim, "similarity": "maxsim", "normalize": True, "backbone": "none"}


def token_vectors(count: int, tokens: int, centres: torch.Tensor, generator: torch.Generator) -> TokenVectors:
    """``TokenVectors`` of ``count`` texts, ``tokens`` float16 unit-norm vectors each (every one counts), around
    random centres as :func:`clustered_vectors` draws them, but in torch: several times faster, which matters
    for the 32M token vectors of 1M documents."""
    import torch
    import torch.nn.functional as F

    from boltir.models.layers import TokenVectors

    picks = torch.randint(0, len(centres), (count * tokens,), generator=generator)
    vectors = centres[picks].add_(torch.randn(count * tokens, centres.shape[1], generator=generator), alpha=0.5)
    return TokenVectors(F.normalize(vectors, dim=-1).half().view(count, tokens, -1),
                        torch.ones(count, tokens, dtype=torch.bool))


def bench_plaid(size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from boltir import PlaidIndexConfig, open_searcher

    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(1024, args.token_dim, generator=generator)
    # plain-torch k-means: fast-plaid's Triton one compiles its kernels with the machine's C compiler first
    config = PlaidIndexConfig(device=args.device, use_triton_kmeans=False)
    directory = workdir / f"PLAID-{size}"
    indexer = config.indexer(directory, TokenVectorsOnly(args.token_dim))
    started = time.perf_counter()
    for start in range(0, size, 8_192):
        count = min(8_192, size - start)
        indexer.add([f"doc{start + i}" for i in range(count)],
                    token_vectors(count, args.doc_tokens, centres, generator))
    indexer.finish()
    build_s = time.perf_counter() - started

    searcher = open_searcher(directory)
    raw = searcher.engine  # fast-plaid's own object over the same files (loaded once, shared by both)
    queries = token_vectors(args.queries, args.query_tokens, centres, generator)
    prepared = queries.unpadded()  # one float16 [tokens, dim] tensor per query: what boltir hands fast-plaid
    k, n_full_scores = args.k, max(config.n_full_scores, args.k)  # boltir never scores fewer than k in full

    def raw_search(part: slice) -> list[list[tuple[int, float]]]:
        return raw.search(queries_embeddings=prepared[part], top_k=k, n_ivf_probe=config.n_ivf_probe,
                          n_full_scores=n_full_scores, show_progress=False)

    first = [[f"doc{position}" for position, _ in hits] for hits in raw_search(slice(None))]
    _, ids = searcher.search_arrays(queries, k)
    agree = float(np.mean([bool(hits) and ids[i][0] == hits[0] for i, hits in enumerate(first)]))
    same = float(np.mean([ids[i] == hits for i, hits in enumerate(first)]))
    return {
        "row": "search", "index": "PLAID", "kind": "PLAID", "docs": size, "k": k, "build_s": build_s,
        **overhead_timings(raw_search, lambda part: searcher.search_arrays(_part(queries, part), k), args),
        "top1_agreement": agree, "topk_agreement": same, "threads": torch.get_num_threads(), "device": args.device,
        "token_dim": args.token_dim, "doc_tokens": args.doc_tokens, "query_tokens": args.query_tokens,
        "versions": versions(("fast-plaid", "torch", "numpy", "boltir")),
    }


def bench_one(kind: str, size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import faiss
    import torch

    from boltir import FaissIndexConfig, open_searcher
    from boltir.index.storage import resolve_index

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
    raw = faiss.read_index(str(resolve_index(directory) / "index.faiss"))  # the live version of the index
    if kind == "IVF":
        faiss.extract_index_ivf(raw).nprobe = 32
    if kind.startswith("HNSW"):
        raw.hnsw.efSearch = 128
    queries = torch.from_numpy(clustered_vectors(args.queries, args.dim, rng, centres) * 2.0)  # unnormalised
    raw_queries = queries.numpy() / np.linalg.norm(queries.numpy(), axis=1, keepdims=True)
    k = args.k

    raw_scores, raw_positions = raw.search(raw_queries, k)
    scores, ids = searcher.search_arrays(queries, k)
    agree = float(np.mean([ids[i][0] == f"doc{raw_positions[i, 0]}" for i in range(len(ids))]))

    raw_batch = _median_time(lambda: raw.search(raw_queries, k), args.repeats)
    boltir_batch = _median_time(lambda: searcher.search_arrays(queries, k), args.repeats)
    n = args.latency_queries
    raw_single = _median_time(lambda: [raw.search(raw_queries[i : i + 1], k) for i in range(n)], args.repeats) / n
    boltir_single = _median_time(lambda: [searcher.search_arrays(queries[i : i + 1], k) for i in range(n)], args.repeats) / n
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


BENCHES = {"Seismic": bench_seismic, "PLAID": bench_plaid}  # the rest are Faiss factories (bench_one)


def results_file(path: str, args: argparse.Namespace, argv: list[str]) -> Results:
    """Where the rows are saved as ``benchmarks.run`` saves its own (rewritten after every row)."""
    from .run import Results

    started = time.time()
    meta = {
        "device": args.device, "machine": machine(args.device),
        "versions": versions(("torch", "faiss-cpu", "pyseismic-lsr", "fast-plaid", "numpy", "boltir")),
        "command": "python -m benchmarks.search " + shlex.join(argv),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "minutes": 0.0,
    }
    return Results(Path(path), meta, started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--indexes", default="Flat,IVF,HNSW32", help="Flat, IVF (4*sqrt(N) lists, nprobe 32), HNSW32 "
                        "(efSearch 128), Seismic and PLAID (boltir's defaults)")
    parser.add_argument("--doc-terms", type=int, default=120, help="Seismic: terms drawn per document")
    parser.add_argument("--query-terms", type=int, default=20, help="Seismic: terms drawn per query")
    parser.add_argument("--token-dim", type=int, default=128, help="PLAID: dimension of the token vectors")
    parser.add_argument("--doc-tokens", type=int, default=32, help="PLAID: token vectors per document")
    parser.add_argument("--query-tokens", type=int, default=32, help="PLAID: token vectors per query")
    parser.add_argument("--device", default="cpu", help="PLAID: fast-plaid's device (cpu, cuda); Faiss and Seismic "
                        "run on the CPU")
    parser.add_argument("--max-hnsw", type=int, default=100_000, help="largest collection for HNSW (its build is slow)")
    parser.add_argument("--max-ivf-min", type=int, default=100_000, help="smallest collection for IVF")
    parser.add_argument("--dim", type=int, default=384, help="Faiss: dimension of the vectors")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also save the rows to this JSON file (meta + results, as "
                        "benchmarks.run writes them), rewritten after every row: a run cut short keeps what it measured")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    results = results_file(args.out, args, argv) if args.out else None
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.indexes.split(","):
            if kind.startswith("HNSW") and size > args.max_hnsw or kind == "IVF" and size < args.max_ivf_min:
                continue
            bench = BENCHES.get(kind)
            row = bench(size, args, workdir) if bench else bench_one(kind, size, args, workdir)
            emit(row)
            if results is not None:
                results += [row]


if __name__ == "__main__":
    main()
