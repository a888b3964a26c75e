"""``boltir serve --config x.yaml``: the search service and page over one index, on uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading

# Set before torch and faiss load libgomp, which reads it once. By default OpenMP threads spin after each parallel
# region; a server makes many small Faiss/BLAS calls, so one thread per core keeps spinning between them and takes
# the cores the event loop, the tokenizer and the other worker processes need (tail latency under load).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import uvicorn  # noqa: E402

from ..errors import BoltirError, ConfigError  # noqa: E402
from ..index import read_manifest  # noqa: E402
from ..serve import ServeConfig, create_app, open_service  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="serve config (YAML): index_dir, corpus, model, reranker, batching, limits")
    parser.add_argument("--host", help="address to listen on (default: the config's host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the config's port, 8080; 0 picks a free one)")
    parser.add_argument("--max-batch-size", type=int, help="override batching.max_batch_size (1 serves one query at a time)")
    parser.add_argument("--max-wait-ms", type=float, help="override batching.max_wait_ms")
    parser.add_argument("--workers", type=int, help="override workers: server processes sharing the port, each with its own model")
    parser.add_argument("--device", help="override device (auto, cpu, cuda)")
    parser.add_argument("--precision", help="override precision (fp32, bf16, fp16)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines (for load tests)")


def run(args: argparse.Namespace) -> int:
    """Load the service, then serve until SIGINT/SIGTERM (uvicorn's handlers finish open requests, then stop)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    # a BoltirError goes to the dispatcher (boltir.cli.main), which prints it in one line
    config = ServeConfig.from_yaml(args.config)
    overrides = {"host": args.host, "port": args.port, "device": args.device, "precision": args.precision, "workers": args.workers}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    if args.max_batch_size is not None:
        config.batching.max_batch_size = args.max_batch_size
    if args.max_wait_ms is not None:
        config.batching.max_wait_ms = args.max_wait_ms
    config.__post_init__()  # the overrides pass the same checks as the file
    if config.workers > 1:
        return _run_workers(config, args.quiet)
    service = open_service(config)
    if args.quiet:
        logging.getLogger("boltir.serve").setLevel(logging.WARNING)
    server = uvicorn.Server(uvicorn.Config(create_app(service), host=config.host, port=config.port, access_log=False,
                                           log_level="info", timeout_graceful_shutdown=10))
    # uvicorn catches SIGINT/SIGTERM, finishes open requests, then raises the signal again for the handler that
    # was there before it; that handler finds the server already stopped, so the command ends with status 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    server.run()
    return 0


def _run_workers(config: ServeConfig, quiet: bool) -> int:
    """``config.workers`` server processes on one port, each with its own service; SIGINT/SIGTERM stop them all.

    Each process listens on its own SO_REUSEPORT socket, so the kernel spreads connections evenly over them (one
    shared listening socket hands a burst of connections to whichever process wakes first). The socket bound here
    holds the port (and resolves port 0) without listening. A worker that exits stops the others: the service is
    then down as a whole, for whatever supervises it to restart.
    """
    read_manifest(config.index_dir)  # a wrong index_dir: one line here, not one per worker
    holder = _reuse_port_socket(config.host, config.port)
    port = holder.getsockname()[1]
    values = {**dataclasses.asdict(config), "port": port}
    if config.threads is None:  # one OpenMP/torch thread per core in every worker would oversubscribe the cores
        values["threads"] = max(1, (os.cpu_count() or 1) // config.workers)
    context = multiprocessing.get_context("spawn")  # CUDA and torch threads do not survive a fork
    workers = [context.Process(target=_worker, args=(values, quiet), name=f"boltir-serve-{i}") for i in range(config.workers)]
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stopping.set())
    for worker in workers:
        worker.start()
    logging.getLogger("boltir.serve").info("%d workers on http://%s:%d (pids %s)", len(workers), config.host, port,
                                           ", ".join(str(w.pid) for w in workers))
    failed = None
    while not stopping.wait(0.2):
        failed = next((w for w in workers if w.exitcode is not None), None)
        if failed is not None:
            break
    for worker in workers:
        if worker.exitcode is None:
            worker.terminate()  # SIGTERM: uvicorn finishes open requests, then the worker exits
    for worker in workers:
        worker.join(15)
        if worker.exitcode is None:
            worker.kill()
            worker.join()
    holder.close()
    if failed is not None:
        raise ConfigError(f"boltir serve: worker {failed.name} exited with status {failed.exitcode} (its error is logged "
                          "above); the other workers were stopped.")
    return 0


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"serve option host/port: cannot listen on {host}:{port} ({exc.strerror}).") from None
    return sock


def _worker(values: dict, quiet: bool) -> None:
    """One server process of ``_run_workers``: load the service, listen, serve until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s [%(process)d] %(message)s", stream=sys.stderr)
    config = ServeConfig.from_dict(values, "boltir serve worker config")
    try:
        service = open_service(config)
    except BoltirError as exc:  # one line, as the dispatcher prints it; the parent stops the rest
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    if quiet:
        logging.getLogger("boltir.serve").setLevel(logging.WARNING)
    sock = _reuse_port_socket(config.host, config.port)
    server = uvicorn.Server(uvicorn.Config(create_app(service), access_log=False, log_level="info", timeout_graceful_shutdown=10))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    server.run(sockets=[sock])


def _stopped(signum: int, frame: object) -> None:
    """The signal's work (a graceful shutdown) is done by the time it reaches this handler."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boltir serve", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
