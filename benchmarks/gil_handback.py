"""What torch's per-op GIL release costs beside a busy Python thread (why ``batching.model_thread: false`` exists).

torch drops the GIL around every operator. A model thread next to a busy event loop must get it back after each
one, and CPython hands it over only when the holder blocks or the switch interval (5 ms by default) runs out.
This times a chain of small ops (a 6-layer encoder makes a few hundred per forward) alone, and beside a thread
that runs pure Python without blocking, at the default interval and at 0.5 ms.

Run: ``python -m benchmarks.gil_handback [--ops 200] [--repeats 10]``
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import torch


def chain_ms(ops: int, repeats: int) -> float:
    x, w = torch.randn(8, 64), torch.randn(64, 64)
    started = time.perf_counter()
    for _ in range(repeats):
        y = x
        for _ in range(ops):
            y = torch.tanh(y @ w)
    return (time.perf_counter() - started) / repeats * 1e3


def beside_busy_thread_ms(ops: int, repeats: int) -> float:
    stop = threading.Event()

    def busy() -> None:  # a loaded event loop: Python bytecode, no blocking call
        while not stop.is_set():
            sum(range(100))

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        return chain_ms(ops, repeats)
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    chain_ms(args.ops, 3)  # warm-up
    print(f"| switch interval | {args.ops} small ops alone, ms | beside a busy Python thread, ms |")
    print("|---:|---:|---:|")
    for interval in (0.005, 0.0005):
        sys.setswitchinterval(interval)
        alone, contended = chain_ms(args.ops, args.repeats), beside_busy_thread_ms(args.ops, args.repeats)
        # three significant digits: a short chain beside the busy thread can take under 0.05 ms, which .1f printed as 0.0
        print(f"| {interval * 1e3:g} ms | {alone:.3g} | {contended:.3g} |")


if __name__ == "__main__":
    main()
