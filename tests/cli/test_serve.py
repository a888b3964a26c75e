"""``boltir serve``'s process set-up: OpenMP threads wait passively unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# records OMP_WAIT_POLICY at the moment torch is first imported (libgomp reads it once, when torch loads it)
_PROBE = """
import importlib.abc, os, sys
seen = {}
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "faiss") and name not in seen:
            seen[name] = os.environ.get("OMP_WAIT_POLICY")
        return None
sys.meta_path.insert(0, Probe())
import boltir.cli.serve
try:
    import faiss  # the index layer loads it when the served index is a Faiss one
except ImportError:
    seen["faiss"] = "absent"
print(seen.get("torch"), seen.get("faiss"))
"""


def policy_when_torch_loads(**env: str) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    environment.update(env, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", _PROBE], env=environment, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_openmp_threads_wait_passively_from_before_torch_and_faiss_load():
    assert policy_when_torch_loads() in (["PASSIVE", "PASSIVE"], ["PASSIVE", "absent"])


def test_a_wait_policy_the_user_set_is_kept():
    assert policy_when_torch_loads(OMP_WAIT_POLICY="ACTIVE")[0] == "ACTIVE"
