"""The fault suite (#16): `boltir index` killed with SIGKILL before every step of a rebuild (each rename, write,
removal and document batch), and two writers at once. ``index_dir`` must then always open as a complete index that
searches to the old result or the new one, and the next build must clean up what the killed one left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from boltir.index import open_searcher
from boltir.index.storage import LOCK, POINTER, STAGING, IndexBuild, resolve_index
from tests.faults import run_cli, start_cli

pytestmark = pytest.mark.faults
QUERIES = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))


class Rebuild:
    """An index of corpus "old" at ``index_dir`` (and a copy to restore it from) and the command rebuilding it
    from corpus "new"; each corpus's search result, from builds that ran to their end."""

    def __init__(self, model_dir: Path, beir: Path, root: Path) -> None:
        self.root, self.index_dir, self.pristine = root, root / "index", root / "pristine"
        self.argv = {name: ["index", "--config", str(self._config(model_dir, beir, name))] for name in ("old", "new")}
        assert self.run("old") == 0, self.log()
        self.old = self.result()
        shutil.copytree(self.index_dir, self.pristine)
        assert self.run("new", steps_file=str(root / "steps")) == 0, self.log()
        self.steps = (root / "steps").read_text().splitlines()
        self.new = self.result()
        assert self.old != self.new

    def _config(self, model_dir: Path, beir: Path, name: str) -> Path:
        corpus = self.root / f"{name}.jsonl"
        with open(beir / "corpus.jsonl") as source:
            docs = [json.loads(line) for line in source]
        corpus.write_text("".join(json.dumps({**doc, "_id": f"{name}-{doc['_id']}"}) + "\n" for doc in docs))
        config = {
            "model": {"class_path": "boltir.BiEncoderModule", "init_args": {"model_name_or_path": str(model_dir)}},
            "data": {"class_path": "boltir.DataModule", "init_args": {
                "inference_datasets": [{"class_path": "boltir.DocDataset", "init_args": {"source": str(corpus)}}],
                "inference_batch_size": 2}},
            "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
            "index_dir": str(self.index_dir),
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def run(self, name: str, log: str = "log", **faults: object) -> int:
        return run_cli(self.argv[name], self.index_dir, self.root / log, **faults)

    def log(self, name: str = "log") -> str:
        return (self.root / name).read_text()

    def restore(self) -> None:
        shutil.rmtree(self.index_dir)
        shutil.copytree(self.pristine, self.index_dir)

    def result(self) -> list[list[str]]:
        return open_searcher(self.index_dir).search_arrays(QUERIES, 3)[1]

    def entries(self) -> list[str]:
        return sorted(p.name for p in self.index_dir.iterdir())


@pytest.fixture()
def rebuild(tiny_bert_dir, tiny_beir, tmp_path) -> Rebuild:
    return Rebuild(tiny_bert_dir, tiny_beir, tmp_path)


def test_a_rebuild_killed_before_any_of_its_steps_leaves_the_old_or_the_new_index(rebuild):
    assert len(rebuild.steps) >= 10  # lock, staging, batches, manifest, rename, pointer, removals
    outcomes = []
    for step, what in enumerate(rebuild.steps, start=1):
        rebuild.restore()
        assert rebuild.run("new", kill_at=step) == -9, f"step {step}: {rebuild.log()}"
        found = rebuild.result()  # opens (sizes checked) and searches
        assert found in (rebuild.old, rebuild.new), f"killed before step {step} ({what}): neither the old nor the new result"
        outcomes.append("old" if found == rebuild.old else "new")
        IndexBuild(rebuild.index_dir).start().abort()  # what the next build does first: clean up
        assert rebuild.entries() == sorted([LOCK, POINTER, resolve_index(rebuild.index_dir).name]), f"step {step} ({what})"
        assert rebuild.result() == found
    flips = outcomes.index("new")
    assert outcomes == ["old"] * flips + ["new"] * (len(outcomes) - flips) and flips > 1, list(zip(rebuild.steps, outcomes))
    print(*(f"{outcome}  {what}" for what, outcome in zip(rebuild.steps, outcomes)), sep="\n")


def test_the_next_build_after_a_kill_completes_and_cleans_up(rebuild):
    rebuild.restore()
    assert rebuild.run("new", kill_at=len(rebuild.steps) // 2) == -9
    assert rebuild.run("new") == 0, rebuild.log()
    assert rebuild.result() == rebuild.new and rebuild.entries() == sorted([LOCK, POINTER, resolve_index(rebuild.index_dir).name])


def test_a_second_writer_fails_at_once_naming_the_first_and_the_index_stays_intact(rebuild):
    rebuild.restore()
    first = start_cli(rebuild.argv["new"], rebuild.index_dir, rebuild.root / "first", stop_at="batch")
    try:
        deadline = time.monotonic() + 120
        while not _stopped(first.pid, rebuild.root / "first.stopped"):
            assert time.monotonic() < deadline and first.exitcode is None, rebuild.log("first")
            time.sleep(0.05)
        # the first writer holds the lock, stopped half-way through encoding: the second must not wait for it
        assert rebuild.run("old", log="second", timeout=60) == 2  # boltir errors exit 2 (one line, no traceback)
        errors = [line for line in rebuild.log("second").splitlines() if "error" in line.lower()]
        assert errors == [f"boltir: error: {rebuild.index_dir} is being built by another process (pid {first.pid}): "
                          "wait for it to finish or choose another index_dir."]
        assert "indexed" not in rebuild.log("second")
        assert rebuild.result() == rebuild.old and STAGING in rebuild.entries()
        os.kill(first.pid, signal.SIGCONT)
        first.join(60)
        assert first.exitcode == 0, rebuild.log("first")
        assert rebuild.result() == rebuild.new and rebuild.entries() == sorted([LOCK, POINTER, resolve_index(rebuild.index_dir).name])
    finally:
        if first.exitcode is None:
            first.kill()
            os.kill(first.pid, signal.SIGCONT)
            first.join(10)


def _stopped(pid: int, marker: Path) -> bool:
    """Whether the process wrote its marker and is now stopped (state T in /proc/PID/stat)."""
    return marker.exists() and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "T"
