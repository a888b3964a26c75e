"""What boltir writes by default is ignored by git, and nothing else: a pattern such as ``models/`` once hid new
source files under src/boltir/models/ from every commit while the tests that imported them passed locally."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_TREES = ("src", "tests", "benchmarks", "configs", "docs")

def _ignored(paths: list[str]) -> set[str]:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT, input="\n".join(paths), capture_output=True, text=True, check=False,
    )
    return set(result.stdout.split())


def test_a_new_file_beside_any_tracked_file_is_not_ignored() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", *SOURCE_TREES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    folders = sorted({str(Path(path).parent) for path in tracked})
    candidates = [f"{folder}/new_module.py" for folder in folders]
    assert "src/boltir/models" in folders and _ignored(candidates) == set()


@pytest.mark.parametrize(
    "written", ["runs/x.run", "indexes/i/CURRENT", "outputs/o", "models/m/config.json", "my-model/w", "train.jsonl"]
)
def test_what_boltir_writes_by_default_is_ignored(written: str) -> None:
    assert _ignored([written]) == {written}
