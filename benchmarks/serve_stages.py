"""Where a search batch of ``boltir serve`` spends its time: wall and CPU milliseconds of each stage of
:meth:`SearchService.search` (query encoding, index search, hits with snippets) at several batch sizes.

CPU time is the whole process's (every thread): a stage whose CPU time is many times its wall time keeps
threads busy that the event loop and other processes then lack (OpenMP threads spin after their work).

Run: ``python -m benchmarks.serve_stages --index-dir DIR --corpus DATA --model MODEL --device cuda --precision bf16``
(an index ``python -m benchmarks.serve`` built, or any other).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from .common import synchronize
from .serve import test_queries


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_times(service: Any, queries: list[str], batch: int, repeats: int, device: str) -> dict[str, float]:
    """Median wall and mean CPU ms of each stage over ``repeats`` batches of ``batch`` queries."""
    from boltir.serve.service import SearchRequest

    wall: dict[str, list[float]] = {"encode": [], "search": [], "hits": []}
    cpu = {name: 0.0 for name in wall}
    for repeat in range(repeats):
        chunk = [queries[(repeat * batch + i) % len(queries)] for i in range(batch)]
        requests = [SearchRequest(q, 10, False) for q in chunk]
        marks = [(time.perf_counter(), cpu_seconds())]
        vectors = service.module.embed_queries(chunk)
        synchronize(device)
        marks.append((time.perf_counter(), cpu_seconds()))
        run = service.searcher.search(vectors, 10)
        marks.append((time.perf_counter(), cpu_seconds()))
        [service.hits(run.ranked(str(i))[:10], r.query) for i, r in enumerate(requests)]
        marks.append((time.perf_counter(), cpu_seconds()))
        for name, (start, end) in zip(wall, zip(marks, marks[1:])):
            wall[name].append(1000 * (end[0] - start[0]))
            cpu[name] += 1000 * (end[1] - start[1])
    row: dict[str, float] = {"batch": batch}
    for name in wall:
        row[f"{name}_ms"] = round(statistics.median(wall[name]), 3)
        row[f"{name}_cpu_ms"] = round(cpu[name] / repeats, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--corpus", required=True, help="the collection the index holds")
    parser.add_argument("--data", help="where the test queries are (default: --corpus)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from boltir.serve.config import ServeConfig
    from boltir.serve.service import SearchService

    config = ServeConfig(index_dir=args.index_dir, corpus=args.corpus, model=args.model, device=args.device,
                         precision=args.precision, threads=args.threads)
    service = SearchService(config)
    queries = test_queries(Path(args.data or args.corpus))
    rows = []
    with torch.inference_mode():
        for batch in (int(b) for b in args.batches.split(",")):
            stage_times(service, queries, batch, 5, args.device)  # warm-up: kernels, allocator
            rows.append(stage_times(service, queries, batch, args.repeats, args.device))
    print(f"engine {service.engine}, threads {args.threads or torch.get_num_threads()}")
    print("| batch | encode ms (CPU) | search ms (CPU) | hits ms (CPU) |\n|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['batch']} | " + " | ".join(f"{row[f'{n}_ms']} ({row[f'{n}_cpu_ms']})" for n in ("encode", "search", "hits")) + " |")
    if args.out:
        args.out.write_text(json.dumps({"engine": service.engine, "threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
