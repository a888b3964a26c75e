"""Every ```python block of README.md runs as a user would run it, so a snippet cannot rot.

How a block runs (the whole rule; nothing else is changed):

* Each block is written to a file as it stands in the README and run by a fresh ``python`` (this tree's
  ``src`` first on the path, ``HF_HUB_OFFLINE=1``) from a stand-in of the repository root: a folder whose
  entries link to the repository's own (``configs/``, ``src/``, ...), so what a block writes (``runs/``,
  ``indexes/``, ``my-model/``...) lands there, not in your checkout.
* Beside that folder sits ``../shared/data/scifact``, the path the README uses: a **subset** of SciFact
  (``SUBSET_QUERIES`` test and train queries, their judged documents and the first ``SUBSET_DOCS`` others), so
  a block that indexes, searches or re-ranks the whole collection runs in seconds. Nothing in the block's text
  changes for this; a block run from a real checkout reads the full collection.
* A line may end with ``# ci: name=value ...`` (shown in the README beside the step it shortens, e.g.
  ``max_steps=300`` next to ``# ci: max_steps=2``): CI runs each ``name=value`` in place of the first one of
  that line with the same name. That is the one switch for steps too long for a CPU. A step that cannot be
  shortened (building LightRetriever's cache of the whole vocabulary: ~20 min on a CPU) ends with
  ``# ci: skip`` and the README says so beside it; CI runs the rest of its block.

Blocks run in README order and are independent of each other; each must finish within ``BLOCK_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SCIFACT = REPO.parent / "shared" / "data" / "scifact"
if not SCIFACT.is_dir():  # worktrees sit one level deeper than the checkout the README assumes
    SCIFACT = Path("/work/shared/data/scifact")
SUBSET_QUERIES = 5
SUBSET_DOCS = 200
BLOCK_TIMEOUT_S = 300
_CI_SWITCH = re.compile(r"#\s*ci:\s*((?:\w+=\S+\s*)+)$")
_CI_SKIP = re.compile(r"#.*\bci:\s*skip\b")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with the line of each opening fence."""
    blocks, lines, start = [], text.splitlines(), None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if start is None and stripped == "```python":
            start, body = number, []
        elif start is not None and stripped == "```":
            blocks.append(Block(start, "\n".join(body) + "\n"))
            start = None
        elif start is not None:
            body.append(line)
    return blocks


def for_ci(code: str) -> str:
    """The block with each line's ``# ci: name=value [name=value ...]`` switches applied to that line."""
    out = []
    for line in code.splitlines():
        match = _CI_SWITCH.search(line)
        if _CI_SKIP.search(line):
            line = line[: len(line) - len(line.lstrip())] + "pass  # skipped in CI, see the README"
        elif match:
            line = line[: match.start()]
            for name, value in re.findall(r"(\w+)=(\S+)", match.group(1)):
                changed = re.sub(rf"\b{name}=[^,)\s]+", f"{name}={value}", line, count=1)
                assert changed != line, f"'# ci: {name}=' names no '{name}=' on its line: {line!r}"
                line = changed
        out.append(line)
    return "\n".join(out) + "\n"


def _subset(source: Path, target: Path) -> None:
    """SciFact cut to a few queries per split, their judged documents and the first documents of the corpus."""
    (target / "qrels").mkdir(parents=True)
    keep_queries: set[str] = set()
    keep_docs: set[str] = set()
    for split in ("train", "test"):
        rows = (source / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        header, rows = rows[0], rows[1:]
        queries = list(dict.fromkeys(row.split("\t")[0] for row in rows))[:SUBSET_QUERIES]
        kept = [row for row in rows if row.split("\t")[0] in queries]
        keep_queries.update(queries)
        keep_docs.update(row.split("\t")[1] for row in kept)
        (target / "qrels" / f"{split}.tsv").write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    with (source / "queries.jsonl").open(encoding="utf-8") as lines:
        queries_kept = [line for line in lines if json.loads(line)["_id"] in keep_queries]
    (target / "queries.jsonl").write_text("".join(queries_kept), encoding="utf-8")
    corpus = []
    with (source / "corpus.jsonl").open(encoding="utf-8") as lines:
        for position, line in enumerate(lines):
            if position < SUBSET_DOCS or json.loads(line)["_id"] in keep_docs:
                corpus.append(line)
    (target / "corpus.jsonl").write_text("".join(corpus), encoding="utf-8")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A stand-in repository root (links to the real entries) with the SciFact subset at ../shared/data/scifact."""
    root = tmp_path_factory.mktemp("readme")
    _subset(SCIFACT, root / "shared" / "data" / "scifact")
    work = root / "boltir"
    work.mkdir()
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for top in sorted({line.split("/")[0] for line in tracked.splitlines()}):
        if (REPO / top).exists():
            (work / top).symlink_to(REPO / top)
    return work


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5, "the README's Python blocks were not found (fence must be exactly ```python)"


def test_ci_switch_replaces_only_its_names() -> None:
    line = "Trainer(max_steps=300, precision='bf16-mixed').fit(m, DataModule(t, batch_size=32))   # ci: max_steps=2 batch_size=4"
    assert for_ci(line) == "Trainer(max_steps=2, precision='bf16-mixed').fit(m, DataModule(t, batch_size=4))   \n"
    assert for_ci("    x = slow()   # ci: skip (20 min)") == "    pass  # skipped in CI, see the README\n"
    with pytest.raises(AssertionError, match="names no 'k='"):
        for_ci("search(x)  # ci: k=3")


def test_subset_keeps_judged_documents(tmp_path) -> None:
    _subset(SCIFACT, tmp_path / "scifact")
    doc_ids = {json.loads(line)["_id"] for line in (tmp_path / "scifact" / "corpus.jsonl").open()}
    for split in ("train", "test"):
        rows = (tmp_path / "scifact" / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        assert len({row.split("\t")[0] for row in rows}) == SUBSET_QUERIES
        assert {row.split("\t")[1] for row in rows} <= doc_ids


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_block_runs(block: Block, checkout: Path, tmp_path: Path) -> None:
    script = tmp_path / f"readme_{block.line}.py"
    script.write_text(for_ci(block.code), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=checkout, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S
    )
    assert done.returncode == 0, f"README.md:{block.line} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
