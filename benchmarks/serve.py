"""``boltir serve`` under load: queries/s and p50/p99 latency at 1, 16 and 64 concurrent HTTP clients, batched
(dynamic batching) vs one query at a time (``max_batch_size: 1``), dense first stage on SciFact.

The server is the real one (``python -m boltir.cli.serve`` in its own process, or ``--workers N`` processes behind
one port, on loopback); the load comes from
separate processes, each running asyncio httpx clients that send the SciFact test queries as
``GET /search?q=...&k=10`` back to back (a client sends its next query when the last one is answered). Each
level runs for ``--seconds`` or ``--max-requests``, whichever ends first, after a short warm-up.

Run: ``python -m benchmarks.serve --device cpu`` (CPU, packaged MiniLM) or
``python -m benchmarks.serve --device cuda --precision bf16 --model DIR --random-weights`` (GPU; random weights of
MiniLM's shape: speed does not depend on the weights). ``--out FILE`` writes the rows as JSON, ``--plot FILE`` a
throughput-vs-clients PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .common import emit, machine, prepare_model, scifact_corpus, versions

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_queries(data: Path) -> list[str]:
    wanted = {line.split("\t")[0] for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:] if line.strip()}
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines() if line.strip()]
    return [q["text"] for q in queries if str(q["_id"]) in wanted]


def build_index(model_dir: str, data: Path, index_dir: Path, device: str, engine: str = "faiss") -> None:
    """``engine`` faiss: a CPU Flat index (the default of ``boltir index``); torch: exact search on the device."""
    from boltir import BiEncoderModule, DataModule, DocDataset, FaissIndexConfig, TorchIndexConfig, Trainer

    started = time.perf_counter()
    trainer = Trainer(logger=False, accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1,
                      precision="bf16-mixed" if device.startswith("cuda") else "32-true")
    index_config = TorchIndexConfig() if engine == "torch" else FaissIndexConfig()
    trainer.index(BiEncoderModule(model_dir), DataModule(DocDataset(data), inference_batch_size=256), index_dir, index_config=index_config)
    print(f"indexed {data} into {index_dir} in {time.perf_counter() - started:.0f}s", flush=True)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far (Linux /proc) of a process and its children (the workers of ``--workers``), all
    their threads: what the server spends per query, a figure that, unlike queries/s, holds up on a machine shared
    with other jobs."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += process_cpu_seconds(int(child))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(config: dict[str, Any], max_batch_size: int, workdir: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """``boltir serve`` with ``workers`` processes; ready once every worker has answered /health (each is its own
    process behind the port, so fresh connections are tried until as many pids have answered)."""
    port = free_port()
    name = f"serve-{max_batch_size}-w{workers}"
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "port": port, "workers": workers}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(workdir / f"{name}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "boltir.cli.serve", "--config", str(path), "--quiet",
                                "--max-batch-size", str(max_batch_size)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    pids: set[int] = set()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(workdir / f'{name}.log').read_text()[-2000:]}")
        try:
            response = httpx.get(url + "/health", timeout=2)
            if response.status_code == 200:
                pids.add(response.json().get("pid", 0))
                if len(pids) >= workers:
                    return process, url
                time.sleep(0.05)
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("server did not start within 300 s")


def recent_batches(url: str) -> dict[str, Any]:
    """The server's timings of the batches it answered in the last 5 s, read right after a level (``GET /health``;
    with ``--workers`` above 1, of the one worker that answers)."""
    import httpx

    return httpx.get(url + "/health", timeout=10).json()["batching"].get("recent", {})


def _batch_line(batches: dict[str, Any]) -> str:
    if not batches.get("batches"):
        return "none in the window"
    return (f"{batches['batches']} of {batches['mean_size']} queries, model busy {batches['busy']:.0%}, process "
            f"p50/p99/max {batches['process_ms']['p50']}/{batches['process_ms']['p99']}/{batches['process_ms']['max']} ms, "
            f"start p99 {batches['start_ms']['p99']} ms, answer p99 {batches['answer_ms']['p99']} ms")


async def _clients(url: str, queries: list[str], clients: int, seconds: float, max_requests: int, offset: int,
                   client_library: str = "aiohttp") -> dict[str, Any]:
    """``clients`` concurrent keep-alive connections in this process, each sending its next query when the last one
    is answered. aiohttp by default: its C parser costs about 0.1 ms of CPU a request, httpx's about 1.3 ms here
    (benchmarks/RESULTS.md, Serving), so with httpx the load generator, not the server, can be what is measured."""
    latencies: list[float] = []
    took: list[float] = []  # the server's took_ms: from the batcher's submit to the hits (queue + batch)
    errors = 0
    stop_at = time.perf_counter() + seconds
    budget = [max_requests]

    async def client(number: int, get: Any) -> None:
        nonlocal errors
        position = offset + number * 7
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            query = queries[position % len(queries)]
            position += 1
            started = time.perf_counter()
            status, body = await get({"q": query, "k": "10"})
            latencies.append(time.perf_counter() - started)
            answer = json.loads(body) if status == 200 else {}
            if not answer.get("hits"):
                errors += 1
            else:
                took.append(answer["took_ms"] / 1000)

    started = time.perf_counter()
    if client_library == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

            async def get(params: dict[str, str]) -> tuple[int, bytes]:
                response = await http.get("/search", params=params)
                return response.status_code, response.content

            started = time.perf_counter()
            await asyncio.gather(*(client(i, get) for i in range(clients)))
            wall = time.perf_counter() - started
    else:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

            async def get(params: dict[str, str]) -> tuple[int, bytes]:
                async with session.get("/search", params=params) as response:
                    return response.status, await response.read()

            started = time.perf_counter()
            await asyncio.gather(*(client(i, get) for i in range(clients)))
            wall = time.perf_counter() - started
    return {"latencies": latencies, "took": took, "errors": errors, "wall": wall}


def _load_process(args: tuple[str, list[str], int, float, int, int, str]) -> dict[str, Any]:
    return asyncio.run(_clients(*args))


def measure(url: str, queries: list[str], clients: int, seconds: float, max_requests: int, processes: int,
            client_library: str = "aiohttp") -> dict[str, Any]:
    """Queries/s and latency percentiles of ``clients`` concurrent clients spread over up to ``processes`` processes."""
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    jobs = [(url, queries, share, seconds, max_requests // processes, i * 1000, client_library) for i, share in enumerate(shares)]
    started = time.perf_counter()
    if processes == 1:
        parts = [_load_process(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            parts = pool.map(_load_process, jobs)
    wall = max(p["wall"] for p in parts) if parts else time.perf_counter() - started
    latencies = sorted(x for p in parts for x in p["latencies"])
    took = sorted(x for p in parts for x in p["took"])
    count = len(latencies)
    return {
        "clients": clients, "requests": count, "errors": sum(p["errors"] for p in parts), "seconds": round(wall, 2),
        "qps": round(count / wall, 1), "p50_ms": _percentile_ms(latencies, 0.5), "p99_ms": _percentile_ms(latencies, 0.99),
        # inside the server, from the batcher's submit to the hits: what the client sees beyond it is HTTP (both
        # ends), the event loop before submit and after the answer, and the load processes' own scheduling
        "server_p50_ms": _percentile_ms(took, 0.5), "server_p99_ms": _percentile_ms(took, 0.99),
        "load_processes": processes,
    }


def _percentile_ms(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    if fraction == 0.5:
        return round(1000 * statistics.median(ordered), 2)
    return round(1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for workers in sorted({r.get("workers", 1) for r in rows}):
        for mode, style in (("batched", "o-"), ("one-at-a-time", "s--")):
            points = sorted((r["clients"], r["qps"]) for r in rows if r["mode"] == mode and r.get("workers", 1) == workers)
            if points:
                axis.plot(*zip(*points), style, label=f"{mode}, {workers} worker{'s' if workers > 1 else ''}")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("concurrent clients")
    axis.set_ylabel("queries / s")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--random-weights", action="store_true", help="random weights of the model's shape")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--corpus-limit", type=int, help="only the first N documents (to try the script quickly)")
    parser.add_argument("--threads", type=int, help="the server's torch CPU threads (1 on a shared machine)")
    parser.add_argument("--index-dir", help="an index of --data by --model to reuse (built here when absent)")
    parser.add_argument("--engine", default="faiss", choices=["faiss", "torch"],
                        help="the index built when --index-dir has none: faiss Flat on the CPU, or torch exact on the device")
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=20, help="at most this long per level")
    parser.add_argument("--max-requests", type=int, default=5000, help="at most this many requests per level")
    parser.add_argument("--warmup", type=int, default=64, help="requests before each mode's first level")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=2)
    parser.add_argument("--no-model-thread", action="store_true", help="batching.model_thread: false (batches on the event loop)")
    parser.add_argument("--model-process", default="auto", choices=["auto", "on", "off"],
                        help="batching.model_process: the model in a process of its own (auto: on with a GPU)")
    parser.add_argument("--load-processes", type=int, default=1, help="processes generating the load")
    parser.add_argument("--client", default="aiohttp", choices=["aiohttp", "httpx"], help="the load generator's HTTP client")
    parser.add_argument("--modes", default="batched,one-at-a-time")
    parser.add_argument("--workers", default="1", help="server processes, a comma list: every mode runs at each")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--replot", type=Path, help="only draw --plot from this --out file (e.g. one a GPU machine wrote)")
    args = parser.parse_args()
    if args.replot:
        summary = json.loads(args.replot.read_text())
        plot(summary["rows"], args.plot, _title(summary))
        return

    from boltir.index import read_manifest
    from boltir.models import resolve_model_dir

    data = Path(args.data)
    model_dir = prepare_model(str(resolve_model_dir(args.model)), args.random_weights)
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    index_dir = Path(args.index_dir) if args.index_dir else workdir / "index"
    corpus = scifact_corpus(data, args.corpus_limit)
    if not (index_dir / "manifest.json").is_file() and not (index_dir / "CURRENT").is_file():  # flat or versioned
        build_index(model_dir, corpus, index_dir, args.device, args.engine)
    queries = test_queries(data)
    config = {"index_dir": str(index_dir), "corpus": str(corpus), "model": model_dir, "device": args.device,
              "precision": args.precision, "threads": args.threads, "batching": {"max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms,
                                                                      "model_thread": not args.no_model_thread,
                                                                      "model_process": {"auto": None, "on": True, "off": False}[args.model_process]}}
    command = "python -m benchmarks.serve " + " ".join(sys.argv[1:])
    rows: list[dict[str, Any]] = []
    for mode, workers in ((m, int(w)) for w in args.workers.split(",") for m in args.modes.split(",")):
        process, url = start_server(config, args.max_batch_size if mode == "batched" else 1, workdir, workers)
        try:
            measure(url, queries, 8, 30, args.warmup, 1, args.client)  # warm-up: first calls, allocator, kernels
            for clients in (int(c) for c in args.clients.split(",")):
                cpu_before = process_cpu_seconds(process.pid)
                row = {"mode": mode, "workers": workers, "device": args.device, "precision": args.precision,
                       "max_batch_size": args.max_batch_size if mode == "batched" else 1, "max_wait_ms": args.max_wait_ms,
                       "client": args.client, **measure(url, queries, clients, args.seconds, args.max_requests, args.load_processes, args.client)}
                row["server_cpu_ms_per_query"] = round(1000 * (process_cpu_seconds(process.pid) - cpu_before) / max(1, row["requests"]), 3)
                row["batches"] = recent_batches(url)
                print(f"{mode:14s} workers {workers} clients {clients:3d}: {row['qps']:8.1f} q/s  p50 {row['p50_ms']:7.2f} ms  "
                      f"p99 {row['p99_ms']:7.2f} ms  server CPU {row['server_cpu_ms_per_query']:.3f} ms/query  ({row['requests']} requests, {row['errors']} errors)", flush=True)
                print(f"{'':14s} inside the server p50 {row['server_p50_ms']} ms p99 {row['server_p99_ms']} ms; batches {_batch_line(row['batches'])}", flush=True)
                rows.append(row)
        finally:
            process.terminate()
            process.wait(30)
    def one_at_a_time(clients: int, workers: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["mode"] == "one-at-a-time" and r["clients"] == clients and r["workers"] == workers), None)

    for row in rows:
        if row["mode"] == "batched":
            same, single = one_at_a_time(row["clients"], row["workers"]), one_at_a_time(row["clients"], 1)
            if same:  # the same number of server processes, one query per forward pass
                row["speedup_vs_one_at_a_time"] = round(row["qps"] / same["qps"], 2)
            if single:  # the plain server: one process, one query at a time
                row["speedup_vs_one_at_a_time_1_worker"] = round(row["qps"] / single["qps"], 2)
    summary = {"benchmark": "serve", "date": date.today().isoformat(), "command": command, "model": args.model,
               "random_weights": args.random_weights, "queries": len(queries), "machine": machine(args.device),
               "engine": read_manifest(index_dir).get("engine"),  # boltir serve sets PASSIVE unless the caller set it:
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
               "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "false"),
               "model_thread": not args.no_model_thread, "model_process": args.model_process, "switch_interval_s": sys.getswitchinterval(),
               "load_average": os.getloadavg(), "versions": versions(("torch", "transformers", "fastapi", "uvicorn", "httpx", "aiohttp", "httptools", "uvloop", "orjson", "faiss-cpu")),
               "rows": rows}
    emit(summary)
    print("\n| mode | workers | clients | queries/s | p50 ms | p99 ms | x one-at-a-time, same workers | x one-at-a-time, 1 worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['mode']} | {row['workers']} | {row['clients']} | {row['qps']} | {row['p50_ms']} | {row['p99_ms']} | "
              f"{row.get('speedup_vs_one_at_a_time', '')} | {row.get('speedup_vs_one_at_a_time_1_worker', '')} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, args.plot, _title(summary))


def _title(summary: dict[str, Any]) -> str:
    where = summary["machine"].get("gpu") or f"CPU ({summary['machine']['cpu_cores']} cores)"
    return f"boltir serve, SciFact, MiniLM-L6 shape, {where}, {summary['rows'][0]['precision']}"


if __name__ == "__main__":
    main()
