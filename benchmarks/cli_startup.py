"""CLI start-up: wall time of ``boltir --help`` and ``boltir index --help``, each in a fresh process, median of 5.

Run from the repository root: ``python benchmarks/cli_startup.py`` (uses this checkout's src/). Issue #21's goal
is under 1 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = [["--help"], ["index", "--help"]]


def startup_seconds(args: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``python -m boltir.cli <args>`` in ``repeats`` fresh processes."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "boltir.cli", *args], env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'max s':>7}")
    for command in COMMANDS:
        times = startup_seconds(command, args.repeats)
        print(f"{'boltir ' + ' '.join(command):<22} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f}")


if __name__ == "__main__":
    main()
