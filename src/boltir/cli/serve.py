"""``boltir serve --config x.yaml``: the search service and page over one index, on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import uvicorn

from ..serve import SearchService, ServeConfig, create_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="serve config (YAML): index_dir, corpus, model, reranker, batching, limits")
    parser.add_argument("--host", help="address to listen on (default: the config's host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the config's port, 8080; 0 picks a free one)")
    parser.add_argument("--max-batch-size", type=int, help="override batching.max_batch_size (1 serves one query at a time)")
    parser.add_argument("--max-wait-ms", type=float, help="override batching.max_wait_ms")
    parser.add_argument("--device", help="override device (auto, cpu, cuda)")
    parser.add_argument("--precision", help="override precision (fp32, bf16, fp16)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines (for load tests)")


def run(args: argparse.Namespace) -> int:
    """Load the service, then serve until SIGINT/SIGTERM (uvicorn's handlers finish open requests, then stop)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    # a BoltirError goes to the dispatcher (boltir.cli.main), which prints it in one line
    config = ServeConfig.from_yaml(args.config)
    overrides = {"host": args.host, "port": args.port, "device": args.device, "precision": args.precision}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    if args.max_batch_size is not None:
        config.batching.max_batch_size = args.max_batch_size
    if args.max_wait_ms is not None:
        config.batching.max_wait_ms = args.max_wait_ms
    config.__post_init__()  # the overrides pass the same checks as the file
    service = SearchService(config)
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


def _stopped(signum: int, frame: object) -> None:
    """The signal's work (a graceful shutdown) is done by the time it reaches this handler."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boltir serve", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
