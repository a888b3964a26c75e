"""Shared pieces of the benchmarks: timing, machine description, SciFact texts, MiniLM-shaped random models.

Every measured system runs in its own process (``python -m benchmarks.<row> ...``) that prints one JSON line,
so peak memory is per system and one framework's imports cannot slow another's.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> float:
    """Wall seconds of ``fn()``, with the device drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], Any], repeats: int, device: str) -> float:
    """Median of ``repeats`` :func:`timed` runs of ``fn``."""
    return statistics.median(timed(fn, device) for _ in range(repeats))


def reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: str) -> float:
    """Peak GPU memory allocated since the last reset (cuda), or the process's peak resident memory (cpu)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sweep_then_repeat(
    run: Callable[[int], float], batch_sizes: list[int], repeats: int, before_repeats: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Time one run per batch size, keep the fastest size, then time ``repeats`` more runs at it (median)."""
    sweep = {size: run(size) for size in batch_sizes}
    best = min(sweep, key=sweep.__getitem__)
    if before_repeats is not None:
        before_repeats()
    times = [run(best) for _ in range(repeats)]
    return {"batch_size": best, "sweep": sweep, "times": times, "median_s": statistics.median(times)}


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 1200, python: str | None = None
) -> list[dict[str, Any]]:
    """Run ``python args...`` and collect the JSON results it emits; a failure is returned as an error row."""
    command = [python or sys.executable, *args]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return [{"error": f"timed out after {timeout}s", "command": " ".join(args)}]
    results = [json.loads(line[len(RESULT_PREFIX) :]) for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    print(f"  ({time.perf_counter() - started:.0f}s, exit {done.returncode})", flush=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-1500:]
        print(tail, flush=True)
        results.append({"error": tail.strip().splitlines()[-1] if tail.strip() else f"exit {done.returncode}", "command": " ".join(args)})
    return results


def versions(names: tuple[str, ...] = ("torch", "transformers", "sentence-transformers", "lightning", "faiss-cpu", "boltir")) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def machine(device: str) -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"python": platform.python_version(), "cpu_cores": os.cpu_count()}
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["cpu"] = model
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# -- data ------------------------------------------------------------------------------------------
def scifact_corpus(data_dir: str | os.PathLike[str], limit: int | None = None, repeat: int = 1) -> Path:
    """The corpus file to index: SciFact itself, or its first ``limit`` documents repeated ``repeat`` times
    (with fresh ids), written to a temporary file."""
    source = Path(data_dir) / "corpus.jsonl"
    if limit is None and repeat == 1:
        return source
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    target = Path(tempfile.mkdtemp(prefix="bench-corpus-")) / "corpus.jsonl"
    with open(target, "w", encoding="utf-8") as handle:
        for copy in range(repeat):
            for line in lines:
                record = json.loads(line)
                record["_id"] = f"{record['_id']}-{copy}" if repeat > 1 else record["_id"]
                handle.write(json.dumps(record) + "\n")
    return target


def scifact_texts(corpus: Path) -> tuple[list[str], list[str]]:
    """Ids and texts (``title + " " + text``, as BEIR builds them) of a corpus file."""
    ids, texts = [], []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            title, text = (record.get("title") or "").strip(), record["text"].strip()
            ids.append(str(record["_id"]))
            texts.append(f"{title} {text}" if title else text)
    return ids, texts


# -- models ----------------------------------------------------------------------------------------
# sentence-transformers' bi-encoder files: a cross-encoder copy leaves them out (its loader would read them)
_BI_ENCODER_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling")


def random_weights_copy(model_dir: str | os.PathLike[str], classifier: bool = False) -> Path:
    """A model directory with ``model_dir``'s shape, tokenizer and sentence-transformers files but random
    weights: speed does not depend on the weights, and the files travel without them. ``classifier``: a
    one-label sequence classifier (a cross-encoder: backbone, pooler and a fresh head) of the same shape."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    source = Path(model_dir)
    target = Path(tempfile.mkdtemp(prefix="bench-model-"))
    for item in source.iterdir():
        if item.suffix in (".safetensors", ".bin", ".xz", ".onnx") or item.name.startswith("."):
            continue
        if classifier and item.name in _BI_ENCODER_FILES:
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy(item, target / item.name)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(source)
    if classifier:
        config.num_labels = 1
        model = AutoModelForSequenceClassification.from_config(config).float()
    else:
        model = AutoModel.from_config(config).float()
    model.config.dtype = torch.float32  # the source may be a float16 copy; loaders read this back
    model.save_pretrained(target)
    return target


def prepare_model(model_dir: str, random_weights: bool, classifier: bool = False) -> str:
    return str(random_weights_copy(model_dir, classifier)) if random_weights else model_dir


def dtype_of(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def lightning_precision(precision: str) -> str:
    return {"fp32": "32-true", "bf16": "bf16-true", "fp16": "16-true"}[precision]


def padded_rows(module: Any, padded: bool = True) -> Any:
    """``module``, kept on padded rows (boltir before packing) where ``padded``: batches never go end to end."""
    if padded:
        module.packs_sequences = lambda: False
    return module


def allow_cudnn_attention() -> None:
    """Let boltir's backbones use cuDNN's attention again (PyTorch's default), to measure what leaving it out saves."""
    from torch.nn.attention import SDPBackend

    from boltir.models import model

    model.SDPA_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                           SDPBackend.MATH]
