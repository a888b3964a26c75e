"""benchmarks/gpu.sh, the GPU rows' one driver, runs only on a lent GPU: here, that what it calls exists. Each
subcommand its help lists has a branch, and every ``--option`` it passes to a benchmark entry point is one that the
entry point (or the module whose arguments it shares) declares, so a renamed option fails here, not on the GPU."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
DRIVER = BENCHMARKS / "gpu.sh"
CALL = re.compile(r"(?:-m benchmarks\.(\w+)|benchmarks/(\w+)\.py|bench_(run) \d+)\b(.*)")  # bench_run: benchmarks.run


def _declared(module: str) -> str:
    """The source of the entry point and of the benchmark modules it imports from (shared argument builders)."""
    text = (BENCHMARKS / f"{module}.py").read_text()
    imported = (BENCHMARKS / f"{m}.py" for m in re.findall(r"^from \.?(\w+) import", text, re.M))
    return text + "".join(path.read_text() for path in imported if path.is_file())


def _calls() -> list[tuple[str, list[str]]]:
    script = DRIVER.read_text().replace("\\\n", " ")  # continued lines as one
    calls = []
    for line in script.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in CALL.finditer(line):
            module = match.group(1) or match.group(2) or match.group(3)
            arguments = re.split(r"\s(?:\||2>&1|;;|&&)", match.group(4))[0]
            arguments = re.sub(r"\"[^\"]*\"|'[^']*'", "", arguments)  # quoted values: options of a nested call
            calls.append((module, re.findall(r"(?<![\w-])(--[a-z][\w-]*)", arguments)))
    return calls


def test_every_subcommand_in_the_help_has_a_branch():
    done = subprocess.run(["bash", str(DRIVER), "help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    listed = re.findall(r"^  (\w[\w-]*)  ", done.stdout, re.M)  # a name, then two spaces
    branches = set(re.findall(r"^  ([\w|-]+)\)", DRIVER.read_text(), re.M))
    branches = {name for group in branches for name in group.split("|")}
    assert len(listed) >= 15 and set(listed) <= branches, set(listed) - branches


def test_every_option_the_driver_passes_is_declared():
    calls = _calls()
    modules = {module for module, _ in calls}
    assert {"run", "parity_scifact", "finetune_minilm", "indexing", "reranking", "serve", "lir_training"} <= modules
    for module, options in calls:
        assert (BENCHMARKS / f"{module}.py").is_file(), module
        declared = _declared(module)
        missing = [o for o in options if f'"{o}"' not in declared]
        assert not missing, f"gpu.sh passes {missing} to benchmarks/{module}.py, which does not declare them"
