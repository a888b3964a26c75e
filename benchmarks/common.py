"""Shared pieces of the benchmarks: timing, machine description, SciFact texts and slices, MiniLM-shaped random
models, Lightning trainer options, and the JSON + markdown files a script writes.

Every measured system runs in its own process (``python -m benchmarks.<row> ...``) that prints one JSON line,
so peak memory is per system and one framework's imports cannot slow another's. This module imports neither
torch nor boltir at the top: Lightning IR's environment (no boltir) imports it too.
"""

from __future__ import annotations

import argparse
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


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of dict rows (the first row's keys are the columns; floats to 4 decimals)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def write_report(out: str | os.PathLike[str], name: str, payload: Any, markdown: str | None = None) -> Path:
    """``out/name.json`` (the raw figures RESULTS.md rows cite) and, given its text, ``out/name.md`` (the table);
    returns the JSON file."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if markdown is not None:
        (out / f"{name}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


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


def beir_queries(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Query id -> text of a BEIR folder's ``queries.jsonl``."""
    queries = {}
    for line in (Path(data_dir) / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            queries[str(record["_id"])] = record["text"]
    return queries


def beir_judged(data_dir: str | os.PathLike[str], split: str) -> dict[str, list[str]]:
    """Query id -> its relevant documents (grade above 0) in a BEIR folder's ``qrels/<split>.tsv``, in file order
    (read without boltir, for Lightning IR's environment; boltir's ``read_qrels`` checks more)."""
    judged: dict[str, list[str]] = {}
    for line in (Path(data_dir) / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, relevance = line.split("\t")[:3]
        if int(relevance) > 0:
            judged.setdefault(query_id, []).append(doc_id)
    return judged


def slice_beir(source: str | os.PathLike[str], target: str | os.PathLike[str], max_docs: int, queries: int,
               test_queries: int | None = None) -> Path:
    """A small BEIR folder, for a quick CPU run of a script (not for figures): the first ``queries`` judged train
    queries and ``test_queries`` (default: as many) judged test queries, with their relevant documents, and the
    corpus's first ``max_docs`` documents besides."""
    source, target = Path(source), Path(target)
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    keep_queries: set[str] = set()
    keep_docs: set[str] = set()
    for split, count in (("train", queries), ("test", queries if test_queries is None else test_queries)):
        kept = dict(list(beir_judged(source, split).items())[:count])
        keep_queries |= set(kept)
        keep_docs |= {d for docs in kept.values() for d in docs}
        lines = [f"{q}\t{d}\t1\n" for q, docs in kept.items() for d in docs]
        (target / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(lines))
    with open(source / "corpus.jsonl", encoding="utf-8") as f, open(target / "corpus.jsonl", "w", encoding="utf-8") as out:
        out.writelines(line for i, line in enumerate(f) if i < max_docs or json.loads(line)["_id"] in keep_docs)
    with open(source / "queries.jsonl", encoding="utf-8") as f, open(target / "queries.jsonl", "w", encoding="utf-8") as out:
        out.writelines(line for line in f if line.strip() and str(json.loads(line)["_id"]) in keep_queries)
    return target


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


def minilm_config(doc_length: int = 256, **more: Any) -> dict[str, Any]:
    """boltir's bi-encoder config for all-MiniLM-L6-v2 as sentence-transformers runs it: mean pooling, normalised,
    cosine, ``doc_length`` tokens (``more``: other options, e.g. ``query_length``)."""
    return {"doc_pooling": "mean", "query_pooling": "mean", "similarity": "cosine", "normalize": True,
            "doc_length": doc_length, **more}


def dtype_of(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def lightning_precision(precision: str, mixed: bool = False) -> str:
    """Lightning's name of a precision: weights in it (inference), or ``mixed`` (training: fp32 weights, autocast)."""
    if precision == "fp32":
        return "32-true"
    return {"bf16": "bf16", "fp16": "16"}[precision] + ("-mixed" if mixed else "-true")


def accelerator(device: str) -> str:
    """Lightning's accelerator for a torch device name (``cuda``, ``cuda:1``, ``cpu``)."""
    return "gpu" if device.startswith("cuda") else "cpu"


def trainer_options(device: str, precision: str = "32-true", devices: int = 1, **more: Any) -> dict[str, Any]:
    """Keyword arguments of a quiet Lightning trainer (boltir's or Lightning IR's) for a scripted or timed run: the
    device's accelerator, ``precision`` (Lightning's name), and no logger, checkpoints, progress bar or summary."""
    return {"accelerator": accelerator(device), "devices": devices, "precision": precision, "logger": False,
            "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False, **more}


def add_system_arguments(parser: argparse.ArgumentParser, systems: list[str], data_help: str = "SciFact BEIR folder") -> None:
    """The options of every speed entry point: which system, where, at what precision, on which model and data."""
    parser.add_argument("--system", choices=systems, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--model", required=True, help="model directory (or its random-weights copy)")
    parser.add_argument("--data", required=True, help=data_help)


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
