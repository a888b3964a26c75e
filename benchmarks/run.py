"""The benchmark suite's one entry point: runs the chosen rows, saves their JSON, renders the results page.

Examples (from the repository root):
  python -m benchmarks.run --device cuda --rows indexing,search,scaling --model MODEL_DIR --data SCIFACT_DIR
  python -m benchmarks.run --device cpu --rows indexing --limit 1000 --model MODEL_DIR --data SCIFACT_DIR
Lightning IR rows run when ``--lir-python`` (and, for a --target install, ``--lir-path``) name its environment.
Results: ``--out``/results-<device>-<rows>.json, re-rendered with every other saved file into ``--md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .common import machine, prepare_model, run_child, scifact_corpus, scifact_texts, versions
from .report import token_flops, write_page

ROWS = ("indexing", "search", "scaling", "training", "reranking")  # scaling: extra points of the indexing row

# Each area of benchmarks/RESULTS.md (one section there) and the entry points that measure its rows
# (``python -m benchmarks.<name>``; ``bash benchmarks/gpu.sh help`` for the GPU subcommand of each row).
AREAS = {
    "effectiveness": "parity_scifact (boltir = sentence-transformers), packed_parity (packed vs padded), "
                     "finetune_minilm (fine-tuning, LoRA), cross_encoder_scifact (BM25 >> cross-encoder, Set-Encoder), "
                     "sparse_multivector_scifact (dense / SPLADE / ColBERT fine-tuned), seismic_scifact",
    "engines vs exact": "seismic_scifact, sparse_multivector_scifact (engine_check: what both share)",
    "indexing": "indexing (boltir, sentence-transformers), lir_indexing (lightning-ir); --rows indexing,scaling; "
                "cpu_interleaved (CPU, systems interleaved in one process)",
    "re-ranking": "reranking (boltir, sentence-transformers), lir_reranking (lightning-ir); --rows reranking; "
                  "cpu_interleaved --run (CPU)",
    "training": "training (boltir, sentence-transformers), lir_training (lightning-ir); --rows training",
    "search overhead": "search (boltir's searchers vs raw Faiss / Seismic / fast-plaid); --rows search",
    "long documents": "sedr_scifact (FirstP / MaxP / SeDR), sedr_encoding (2,048 tokens), sparse_attention",
    "LightRetriever": "light_retriever (query encoding speed), light_retriever_scifact (fine-tuning, nDCG@10)",
    "serving": "serve (boltir serve under HTTP load, batched vs one at a time)",
}


def _indexing_args(
    args: argparse.Namespace, system: str, precision: str, batch_sizes: str, limit: int | None = None,
    repeats: int | None = None, **extra: Any,
) -> list[str]:
    module = "benchmarks.lir_indexing" if system.startswith("lir") else "benchmarks.indexing"
    argv = ["-m", module, "--system", system, "--device", args.device, "--precision", precision, "--model", args.model_dir,
            "--data", args.data, "--batch-sizes", batch_sizes, "--repeats", str(repeats or args.repeats)]
    if limit or args.limit:
        argv += ["--limit", str(limit or args.limit)]
    if args.repeat_corpus > 1 and not system.startswith("lir"):
        argv += ["--repeat-corpus", str(args.repeat_corpus)]
    if args.num_workers is not None:
        argv += ["--num-workers", str(args.num_workers)]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def _lir(args: argparse.Namespace, argv: list[str]) -> list[dict[str, Any]]:
    """Lightning IR runs in its own environment (transformers<5): its python, its PYTHONPATH."""
    return run_child(argv, env={"PYTHONPATH": args.lir_path} if args.lir_path else None, python=args.lir_python)


class Results(list):
    """The rows measured so far, saved to ``path`` after each addition: a run cut short keeps what it measured."""

    def __init__(self, path: Path, meta: dict[str, Any], started: float) -> None:
        super().__init__()
        self.path, self.meta, self.started = path, meta, started

    def __iadd__(self, rows):  # type: ignore[override]
        self.extend(rows)
        self.meta["minutes"] = round((time.time() - self.started) / 60, 1)
        self.path.write_text(json.dumps({"meta": self.meta, "results": list(self)}, indent=1) + "\n")
        return self


def indexing_rows(args: argparse.Namespace, scaling: bool, results: Results) -> None:
    """Every system at every precision; the last precision's st and boltir-index also time the scaling points."""
    precisions = args.precisions.split(",")
    for precision in precisions:
        points = {"points": args.scaling_points} if scaling and precision == precisions[-1] else {}
        systems = args.systems.split(",")
        if "st" in systems:
            results += run_child(_indexing_args(args, "st", precision, args.st_batch_sizes, **points))
        if "boltir-encode" in systems:
            results += run_child(_indexing_args(args, "boltir-encode", precision, args.boltir_batch_sizes))
        if "boltir-index" in systems:
            results += run_child(_indexing_args(args, "boltir-index", precision, args.index_batch_sizes, **points))
            for devices in (int(n) for n in args.index_devices.split(",") if int(n) > 1):  # DDP rows
                results += run_child(_indexing_args(args, "boltir-index", precision, args.index_batch_sizes, devices=devices))
        if args.lir_python:
            results += _lir(args, _indexing_args(args, "lir-index", precision, args.lir_batch_sizes))
    if args.device.startswith("cuda") and args.st_fp16:
        results += run_child(_indexing_args(args, "st", "fp16", args.st_batch_sizes))  # the reference setting


def training_rows(args: argparse.Namespace, results: Results) -> None:
    """Each training system at each precision; boltir also under DDP on each of ``--training-devices``."""
    for precision in args.precisions.split(","):
        for system in args.training_systems.split(","):
            argv = ["-m", "benchmarks.lir_training" if system == "lir" else "benchmarks.training", "--system", system,
                    "--device", args.device, "--precision", precision, "--model", args.model_dir, "--data", args.data,
                    *shlex.split(args.training_args)]
            if system == "lir":  # Lightning IR's own environment
                results += _lir(args, argv) if args.lir_python else []
                continue
            for devices in [1] + [int(n) for n in args.training_devices.split(",") if int(n) > 1 and system == "boltir"]:
                results += run_child(argv + (["--devices", str(devices)] if devices > 1 else []))


def reranking_rows(args: argparse.Namespace, results: Results) -> None:
    """Every re-ranking system at every precision, over the same run and pairs."""
    model = prepare_model(args.rerank_model, args.random_weights, classifier=True)
    for precision in args.precisions.split(","):
        for system in args.rerank_systems.split(","):
            lir = system.startswith("lir")
            if lir and not args.lir_python:
                continue
            argv = ["-m", "benchmarks.lir_reranking" if lir else "benchmarks.reranking", "--system", system,
                    "--device", args.device, "--precision", precision, "--model", model, "--data", args.data,
                    "--run", args.rerank_run, "--repeats", str(args.repeats), "--model-label",
                    Path(args.rerank_model).name + (" (random weights)" if args.random_weights else ""),
                    "--batch-sizes", getattr(args, f"rerank_{'lir' if lir else system.split('-')[0]}_batch_sizes"),
                    *shlex.split(args.rerank_args)]
            results += _lir(args, argv) if lir else run_child(argv)


def main() -> None:
    areas = "\n".join(f"  {area:22} {entry}" for area, entry in AREAS.items())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"areas (python -m benchmarks.<entry point> --help for each):\n{areas}\n"
                                            "GPU rows: bash benchmarks/gpu.sh SUBCOMMAND (bash benchmarks/gpu.sh help lists them)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rows", default="indexing,search", help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 directory (or one with its config + tokenizer)")
    parser.add_argument("--random-weights", action="store_true", help="random weights of the model's shape")
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--limit", type=int, default=None, help="index only the first N documents (CPU)")
    parser.add_argument("--repeat-corpus", type=int, default=1, help="index the (limited) corpus repeated N times "
                        "(fresh ids), so fixed costs do not dominate (multi-GPU rows)")
    parser.add_argument("--precisions", default=None, help="default: fp32,bf16 on cuda, fp32 on cpu")
    parser.add_argument("--systems", default="st,boltir-encode,boltir-index", help="of the indexing row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--st-batch-sizes", default="32,128,512")
    parser.add_argument("--boltir-batch-sizes", default="512,2048")
    parser.add_argument("--index-batch-sizes", default="512,2048")
    parser.add_argument("--index-devices", default="1", help="e.g. 1,2: also index with 2 GPUs under DDP")
    parser.add_argument("--lir-batch-sizes", default="64,256")
    parser.add_argument("--st-fp16", action="store_true", help="also time sentence-transformers in fp16 (cuda)")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--lir-python", default=None, help="python of a Lightning IR environment")
    parser.add_argument("--lir-path", default=None, help="PYTHONPATH for it (e.g. a pip --target folder)")
    parser.add_argument("--search-args", default="", help="extra arguments for benchmarks.search")
    parser.add_argument("--training-args", default="", help="extra arguments for benchmarks.training")
    parser.add_argument("--scaling-points", default="1000x1,5183x4", help="LIMITxREPEAT collection sizes (with --rows scaling)")
    parser.add_argument("--rerank-model", default=None, help="cross-encoder directory (or its shape, with --random-weights)")
    parser.add_argument("--rerank-run", default=None, help="first-stage TREC run to re-rank (benchmarks.reranking --make-run)")
    parser.add_argument("--rerank-systems", default="st,boltir-score,boltir-re-rank,lir-re-rank")
    parser.add_argument("--rerank-st-batch-sizes", default="64,256")
    parser.add_argument("--rerank-boltir-batch-sizes", default="256,1024")
    parser.add_argument("--rerank-lir-batch-sizes", default="100,400")
    parser.add_argument("--rerank-args", default="", help="extra arguments for benchmarks.reranking (e.g. --queries 10)")
    parser.add_argument("--training-systems", default="st,boltir,lir", help="of the training row (lir: with --lir-python)")
    parser.add_argument("--training-devices", default="1", help="e.g. 1,2: also train boltir on 2 GPUs under DDP")
    parser.add_argument("--name", default=None, help="results-NAME.json (default: device and rows)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--md", default="benchmarks/results/RESULTS-bench.md")
    args = parser.parse_args()
    args.precisions = args.precisions or ("fp32,bf16" if args.device.startswith("cuda") else "fp32")
    rows = args.rows.split(",")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {ROWS}")
    args.model_dir = prepare_model(args.model, args.random_weights)
    if args.lir_path:
        args.lir_path = f"{args.lir_path}:{Path.cwd()}"

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    corpus = scifact_corpus(args.data, args.limit, args.repeat_corpus)
    meta = {
        "device": args.device,
        "machine": machine(args.device),
        "versions": versions(),
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "random_weights": args.random_weights,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": 0.0,
        "corpus_docs": len(scifact_texts(corpus)[1]),
        "corpus_flops": token_flops(args.model_dir, scifact_texts(corpus)[1]),
    }
    name = args.name or f"{args.device.split(':')[0]}-{'-'.join(rows)}"  # one file per device and row set
    results = Results(out / f"results-{name}.json", meta, started)
    if "indexing" in rows:
        indexing_rows(args, "scaling" in rows, results)
    if "search" in rows:
        results += run_child(["-m", "benchmarks.search", *shlex.split(args.search_args)])
    if "training" in rows:
        training_rows(args, results)
    if "reranking" in rows:
        if not (args.rerank_model and args.rerank_run):
            parser.error("--rows reranking needs --rerank-model and --rerank-run")
        reranking_rows(args, results)
    results += []  # saved even when no row ran
    print(write_page(out, Path(args.md)).read_text())


if __name__ == "__main__":
    main()
