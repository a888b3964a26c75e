"""Fine-tune all-MiniLM-L6-v2 on SciFact train; compare SciFact test nDCG@10 zero-shot vs fine-tuned.

``--lora-r 0 16`` fine-tunes once per rank after the one zero-shot stage (0: every weight; 16: LoRA adapters of
rank 16 on every linear layer, ``--lora-alpha``, at learning rate ``--lora-lr``), same data, steps and schedule,
and reports for each the trained parameters, peak GPU memory and fit time beside the effectiveness.

Every stage goes through boltir: zero-shot index + search (test for the baseline, train for hard negatives),
``boltir fit`` with a fit config, then index + search of the test split with the fine-tuned model directory.
Both models are evaluated the same way: float32 weights, exact (Flat) Faiss index, the zero-shot model's
query/document lengths, ir-measures nDCG@10 / RR@10 / R@100 over the 300 test queries.

GPU (full settings):
    python benchmarks/finetune_minilm.py --data .carry/scifact --model .carry/minilm-fp16 --device cuda
CPU smoke test (tiny slice, 2 steps):
    python benchmarks/finetune_minilm.py --data ../shared/data/scifact --device cpu --max-docs 200 --max-queries 16 \
        --max-steps 2 --out /tmp/finetune-smoke
LoRA vs full fine-tuning (GPU):
    python benchmarks/finetune_minilm.py --data /tmp/scifact --model /tmp/minilm --device cuda --lora-r 0 16 \
        --index torch --no-validation --out $OUT
Writes ``finetune_minilm.json`` and ``finetune_minilm.md`` to ``--out`` (``finetune_minilm_lora.*`` with ``--lora-r``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file (python benchmarks/finetune_minilm.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import accelerator, slice_beir, trainer_options, write_report  # noqa: E402
from boltir import BiEncoderModule, DataModule, DocDataset, QueryDataset, Trainer  # noqa: E402
from boltir.cli.main import main as boltir_cli  # noqa: E402
from boltir.index.dense_exact import TorchIndexConfig  # noqa: E402

MEASURES = ["nDCG@10", "RR@10", "R@100"]
CONFIG_DATA = "../../shared/data/scifact"  # as the config writes them: relative to configs/
CONFIG_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CONFIG_RUN = "../runs/scifact-minilm-train.run"
CONFIG_OUTPUT = "../outputs/scifact-minilm-fit"


def inference_trainer(device: str) -> Trainer:
    return Trainer(**trainer_options(device))


def index_and_search(module: BiEncoderModule, data: Path, work: Path, name: str, device: str, batch_size: int,
                     splits: list[str], engine: str = "faiss") -> dict:
    """Index the corpus with ``module`` (an exact Faiss or torch index) and search each split; returns the test
    metrics and the time taken."""
    trainer = inference_trainer(device)
    start = time.perf_counter()
    index_dir = work / f"{name}-index"
    index_config = TorchIndexConfig() if engine == "torch" else None
    trainer.index(module, DataModule(DocDataset(data), inference_batch_size=batch_size), index_dir=index_dir,
                  index_config=index_config)
    results = {}
    for split in splits:
        queries = DataModule(QueryDataset(data, split=split), inference_batch_size=batch_size)
        callback = trainer.search(module, queries, index_dir=index_dir, k=100, run_path=work / f"{name}-{split}.run", measures=MEASURES)
        results[split] = next(iter(callback.results.values()))
    return {"test": results["test"], "seconds": time.perf_counter() - start}


def fit(config: Path, data: Path, model: str, train_run: Path, work: Path, device: str, precision: str, max_steps: int | None,
        extra_args: list[str] = ()) -> dict:
    """``boltir fit`` on the config with its paths pointed at this run's data, model, negatives and output
    (``work / "fit"``), plus ``extra_args`` (CLI options); peak GPU memory is read around it."""
    text = config.read_text()
    # absolute: a relative path in the written config would be relative to its folder (work), not to here
    model = os.path.abspath(model) if Path(model).exists() else model
    for old, new in ((CONFIG_DATA, data), (CONFIG_MODEL, model), (CONFIG_RUN, train_run), (CONFIG_OUTPUT, work / "fit")):
        text = text.replace(old, str(new) if isinstance(new, str) else os.path.abspath(new))
    work.mkdir(parents=True, exist_ok=True)
    fit_config = work / "fit.yaml"
    fit_config.write_text(text)
    args = ["fit", "--config", str(fit_config), "--trainer.accelerator", accelerator(device)]
    args += ["--trainer.precision", precision, "--trainer.enable_progress_bar", "false", *extra_args]
    if max_steps is not None:
        args += ["--trainer.max_steps", str(max_steps)]
    if device == "cuda":  # the peak of this fit alone: what earlier stages held is freed first
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    boltir_cli(args)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    last = work / "fit" / "checkpoints" / "last.ckpt"
    steps = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    return {"model_dir": str(last.with_suffix("")), "seconds": seconds, "steps": steps, "config": text,
            "args": args[3:], "peak_gpu_mib": peak}


def trained_parameters(model: str, lora: dict) -> tuple[int, int]:
    """(parameters that train, all parameters) of the bi-encoder the fit builds with these LoRA options."""
    module = BiEncoderModule(model, config_overrides=lora)
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def fine_tune_ranks(args: argparse.Namespace, data: Path, work: Path, precision: str, batch_size: int, lengths: dict) -> Iterator[list[dict]]:
    """One fit and evaluation per ``--lora-r`` rank (0: full fine-tuning), written after each so a cut run keeps them."""
    arms = []
    for rank in args.lora_r:
        lora = {"lora_r": rank, "lora_alpha": args.lora_alpha} if rank else {}
        extra = ["--model.init_args.config_overrides", json.dumps(lora)] if rank else []
        if rank and args.lora_lr is not None:
            extra += ["--optimizer.init_args.lr", str(args.lora_lr)]
        if args.no_validation:
            extra += ["--trainer.limit_val_batches", "0"]
        arm_work = work / (f"lora-r{rank}" if rank else "full")
        trained = fit(args.config, data, args.model, work / "zero-shot-train.run", arm_work, args.device, precision,
                      args.max_steps, extra)
        tuned = index_and_search(BiEncoderModule(trained["model_dir"], config=lengths), data, arm_work, "fine-tuned",
                                 args.device, batch_size, ["test"], args.index)
        trainable, total = trained_parameters(args.model, lora)
        arms.append({"lora_r": rank, "lora_alpha": args.lora_alpha if rank else None, "fit": trained, "test": tuned["test"],
                     "eval_seconds": tuned["seconds"], "trained_params": trainable, "total_params": total})
        yield arms


def write_lora_results(out: Path, results: dict) -> None:
    zero = results["zero_shot"]["test"]
    lines = [
        f"| SciFact test ({results['test_queries']} queries) | " + " | ".join(MEASURES) + " | trained params | peak GPU MiB | fit s | steps |",
        "|---|" + "---:|" * (len(MEASURES) + 4),
        "| all-MiniLM-L6-v2 zero-shot | " + " | ".join(f"{zero[m]:.4f}" for m in MEASURES) + " | – | – | – | – |",
    ]
    for arm in results["arms"]:
        name = f"LoRA r={arm['lora_r']}, alpha={arm['lora_alpha']}" if arm["lora_r"] else "full fine-tuning"
        peak = f"{arm['fit']['peak_gpu_mib']:,.0f}" if arm["fit"]["peak_gpu_mib"] is not None else "–"
        lines.append(f"| {name} | " + " | ".join(f"{arm['test'][m]:.4f}" for m in MEASURES)
                     + f" | {arm['trained_params']:,} of {arm['total_params']:,} | {peak} | {arm['fit']['seconds']:.0f} | {arm['fit']['steps']} |")
    lines += ["", f"Fit: {results['fit_config']}, precision {results['precision']}, on {results['device']}; index: {results['index']}. "
              "Options per fit:"]
    lines += [f"- r={arm['lora_r']}: `{' '.join(arm['fit']['args'])}`" for arm in results["arms"]]
    if results.get("slice"):
        lines.append(f"Data slice (smoke test, not a figure): {results['slice']}.")
    write_report(out, "finetune_minilm_lora", results, "\n".join(lines))


def write_results(out: Path, results: dict) -> None:
    zero, tuned = results["zero_shot"]["test"], results["fine_tuned"]["test"]
    lines = [
        f"| SciFact test ({results['test_queries']} queries) | " + " | ".join(MEASURES) + " | index+search s |",
        "|---|" + "---:|" * (len(MEASURES) + 1),
        "| all-MiniLM-L6-v2 zero-shot | " + " | ".join(f"{zero[m]:.4f}" for m in MEASURES) + f" | {results['zero_shot']['seconds']:.0f} |",
        "| fine-tuned on SciFact train | " + " | ".join(f"{tuned[m]:.4f}" for m in MEASURES) + f" | {results['fine_tuned']['seconds']:.0f} |",
        "",
        f"nDCG@10 change: {results['delta_ndcg10']:+.4f}. Fit: {results['fit']['steps']} steps in {results['fit']['seconds']:.0f} s "
        f"({results['fit_config']}, precision {results['precision']}) on {results['device']}.",
    ]
    if results.get("slice"):
        lines.append(f"Data slice (smoke test, not a figure): {results['slice']}.")
    write_report(out, "finetune_minilm", results, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"), help="SciFact in BEIR layout")
    parser.add_argument("--model", default=CONFIG_MODEL, help="all-MiniLM-L6-v2 directory or hub name")
    parser.add_argument("--config", type=Path, default=Path("configs/scifact-minilm-fit.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None, help="training precision (default: bf16-mixed on cuda, 32-true on cpu)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's training length")
    parser.add_argument("--batch-size", type=int, default=None, help="inference batch size (default: 256 cuda, 32 cpu)")
    parser.add_argument("--max-docs", type=int, default=None, help="smoke test: slice the corpus")
    parser.add_argument("--max-queries", type=int, default=16, help="smoke test: queries per split when slicing")
    parser.add_argument("--lora-r", type=int, nargs="+", default=None,
                        help="fine-tune once per rank (0: every weight) and compare; without it: one full fine-tuning")
    parser.add_argument("--lora-alpha", type=float, default=32, help="LoRA scale numerator (scale = alpha / r)")
    parser.add_argument("--lora-lr", type=float, default=None, help="learning rate of the LoRA fits (default: the config's)")
    parser.add_argument("--index", choices=["faiss", "torch"], default="faiss", help="exact index engine for evaluation")
    parser.add_argument("--no-validation", action="store_true", help="skip the config's monitoring validation during fits")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    precision = args.precision or ("bf16-mixed" if args.device == "cuda" else "32-true")
    batch_size = args.batch_size or (256 if args.device == "cuda" else 32)
    work = args.out / "finetune_minilm-work"
    work.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    if args.max_docs is not None:
        data = slice_beir(data, work / "data", args.max_docs, args.max_queries)

    zero_shot = BiEncoderModule(args.model)
    zero_shot.float()  # fp16 weights (the GPU copy) are evaluated in float32 like the fine-tuned model
    lengths = {"query_length": zero_shot.config.query_length, "doc_length": zero_shot.config.doc_length}
    zero = index_and_search(zero_shot, data, work, "zero-shot", args.device, batch_size, ["test", "train"], args.index)
    del zero_shot
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    if args.lora_r is not None:
        for arms in fine_tune_ranks(args, data, work, precision, batch_size, lengths):
            write_lora_results(args.out, {
                "zero_shot": zero, "arms": arms, "fit_config": str(args.config),
                "lora_lr": args.lora_lr, "precision": precision, "device": device, "index": args.index,
                "eval_lengths": lengths, "test_queries": len(QueryDataset(data, split="test")),
                "slice": {"max_docs": args.max_docs, "max_queries": args.max_queries} if args.max_docs is not None else None,
                "versions": {"torch": torch.__version__, "python": platform.python_version()},
            })
            print((args.out / "finetune_minilm_lora.md").read_text(), flush=True)
        return

    trained = fit(args.config, data, args.model, work / "zero-shot-train.run", work, args.device, precision, args.max_steps)
    tuned_module = BiEncoderModule(trained["model_dir"], config=lengths)
    tuned = index_and_search(tuned_module, data, work, "fine-tuned", args.device, batch_size, ["test"])

    results = {
        "zero_shot": zero,
        "fine_tuned": tuned,
        "delta_ndcg10": tuned["test"]["nDCG@10"] - zero["test"]["nDCG@10"],
        "fit": trained,
        "fit_config": str(args.config),
        "precision": precision,
        "device": device,
        "eval_lengths": lengths,
        "test_queries": len(QueryDataset(data, split="test")),
        "slice": {"max_docs": args.max_docs, "max_queries": args.max_queries} if args.max_docs is not None else None,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    write_results(args.out, results)
    print((args.out / "finetune_minilm.md").read_text())


if __name__ == "__main__":
    main()
