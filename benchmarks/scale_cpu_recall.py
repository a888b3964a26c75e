"""IVF-PQ (+ refinement) recall@10 and latency at 1M documents on a CPU, from real all-MiniLM-L6-v2 vectors.

The GPU machine was not lent this session, so the 1M spliced corpus of ``benchmarks/scale.py`` cannot be encoded.
Its vectors are approximated from real ones: every SciFact document's head (title + its words up to ``scale.splice_point``) and
tail (the rest) are encoded apart on the CPU, and spliced document ``i`` (head of ``d``, tail of
``(d + 2089c) mod 5183``, as ``scale.write_corpus`` builds it) gets ``normalize(head_d + tail_p)``. That keeps the
corpus's structure (N / 5,183 documents share each head: near neighbours in tight clusters); how close it is to
encoding the spliced text is measured on ``--check`` real spliced documents (mean cosine printed). Queries are
1,000 real SciFact query vectors. The vectors go through boltir's ShardWriter, indexes through ``build_index``
and searches through ``open_searcher`` (the code paths of ``scale.py``). Latency: one query per call, median and
p99, and a batch of 1,000 per call divided by 1,000, on this machine's cores (say which and how shared).

Run: ``python -m benchmarks.scale_cpu_recall --model DIR --data SCIFACT_DIR --docs 1000000 --out OUT``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .scale import PARTNER_STEP, directory_mib, splice_point, engine_specs, exact_top_k, read_queries, search_figures, write_corpus


def halves(data_dir: str) -> tuple[list[str], list[str]]:
    from boltir.data.datasets import join_title

    heads, tails = [], []
    for line in (Path(data_dir) / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        words = record["text"].split()
        half = splice_point(len(words))
        heads.append(join_title(record.get("title") or "", " ".join(words[:half])))
        tails.append(" ".join(words[half:]))
    return heads, tails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--engines", default="ivf-pq96-sq8")
    parser.add_argument("--ivf-lists", type=int, default=4096)
    parser.add_argument("--train-size", type=int, default=163_840)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single-queries", type=int, default=200)
    parser.add_argument("--check", type=int, default=500, help="real spliced documents encoded to check the approximation")
    parser.add_argument("--sweep", default=None, help="JSON list of settings, instead of engine_specs' sweep")
    parser.add_argument("--work", default="/tmp/boltir-scale-cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import faiss
    import torch

    from boltir import BiEncoderModule, FaissIndexConfig, open_searcher
    from boltir.callbacks.index import build_index
    from boltir.index.shards import ShardWriter

    from .common import machine, versions

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    module = BiEncoderModule(args.model, config={"doc_pooling": "mean", "query_pooling": "mean", "similarity": "cosine", "normalize": True, "doc_length": 256}).eval()
    cache = work / "halves.npz"
    if cache.is_file():
        parts = np.load(cache)
        head_vectors, tail_vectors, queries = parts["heads"], parts["tails"], parts["queries"]
    else:
        heads, tails = halves(args.data)
        started = time.perf_counter()
        head_vectors = module.encode_docs(heads, batch_size=64).numpy()
        tail_vectors = module.encode_docs(tails, batch_size=64).numpy()
        queries = module.encode_queries(read_queries(args.data, args.queries)).numpy()
        print(f"encoded {len(heads):,} heads, tails and {len(queries):,} queries in {time.perf_counter() - started:.0f} s", flush=True)
        np.savez(cache, heads=head_vectors, tails=tail_vectors, queries=queries)
    size = len(head_vectors)

    def composed(start: int, stop: int) -> np.ndarray:
        i = np.arange(start, stop)
        d, c = i % size, i // size
        v = head_vectors[d] + tail_vectors[(d + c * PARTNER_STEP) % size]
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    result: dict[str, Any] = {"machine": machine("cpu"), "versions": versions(), "args": vars(args), "faiss_threads": faiss.omp_get_max_threads(), "docs": args.docs}
    if args.check:  # real spliced documents (the corpus scale.py indexes) against their composed vectors
        corpus = work / "check.jsonl"
        write_corpus(args.data, size * 3, corpus)
        lines = corpus.read_text(encoding="utf-8").splitlines()
        rows = np.linspace(0, len(lines) - 1, args.check).astype(int)
        from boltir.data.datasets import join_title

        texts = [join_title(json.loads(lines[r])["title"], json.loads(lines[r])["text"]) for r in rows]
        real = module.encode_docs(texts, batch_size=64).numpy()
        cosines = (real * np.concatenate([composed(int(r), int(r) + 1) for r in rows])).sum(1)
        result["approximation_cosine"] = {"mean": float(cosines.mean()), "p5": float(np.percentile(cosines, 5)), "checked": len(rows)}
        print(f"composed vs real spliced vectors: mean cosine {cosines.mean():.4f} (5th percentile {np.percentile(cosines, 5):.4f}, {len(rows)} documents)", flush=True)
    shard_dir = work / f"shards-{args.docs}"
    if not shard_dir.is_dir():
        writer = ShardWriter(shard_dir, shard_size=65_536)
        for start in range(0, args.docs, 65_536):
            stop = min(args.docs, start + 65_536)
            writer.add([f"{i % size}-{i // size}" for i in range(start, stop)], torch.from_numpy(composed(start, stop)))
        writer.close()
    exact = exact_top_k(shard_dir, queries, 10, "cpu")
    result["exact_s"] = exact.seconds
    query_tensor = torch.from_numpy(queries)
    namespace = argparse.Namespace(ivf_lists=args.ivf_lists)
    result["engines"] = {}
    for name, spec in engine_specs(namespace, args.engines).items():
        config = FaissIndexConfig(factory=spec["factory"], train_size=args.train_size, refine=spec.get("refine"))
        started = time.perf_counter()
        index_dir = build_index(shard_dir, work / name, config, module.model)
        build_s = time.perf_counter() - started
        rows = []
        for settings in json.loads(args.sweep) if args.sweep else spec["sweep"]:
            figures, _ = search_figures(open_searcher(index_dir, **settings), query_tensor, exact, 10, args.single_queries)
            rows.append({"settings": settings, **figures})
            print(f"[{args.docs:,}] {name} {settings}: recall@10 {figures['recall_at_10']:.4f} (tie-aware {figures['recall_at_10_ties']:.4f}), {figures['single_query_ms_median']:.2f} ms/query "
                  f"one at a time (p99 {figures['single_query_ms_p99']:.2f}), batched {figures['batch_ms_per_query']:.3f}", flush=True)
        result["engines"][name] = {"factory": spec["factory"], "refine": spec.get("refine"), "build_s": build_s, "disk_mib": directory_mib(index_dir), "search": rows}
        print(f"[{args.docs:,}] {name} built in {build_s:.0f} s, {result['engines'][name]['disk_mib']:,.0f} MiB on disk", flush=True)
        (out / "cpu-recall.json").write_text(json.dumps(result, indent=1))
        shutil.rmtree(index_dir, ignore_errors=True)
    print("\n| engine | build s | disk MiB | settings | recall@10 | recall@10 tie-aware | ms/query, one query per call (median / p99) | ms/query, batch of 1,000 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, engine in result["engines"].items():
        for row in engine["search"]:
            print(f"| {name} | {engine['build_s']:.0f} | {engine['disk_mib']:,.0f} | {row['settings']} | {row['recall_at_10']:.4f} | {row['recall_at_10_ties']:.4f} | "
                  f"{row['single_query_ms_median']:.2f} / {row['single_query_ms_p99']:.2f} | {row['batch_ms_per_query']:.3f} |")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
