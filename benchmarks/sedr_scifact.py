"""FirstP vs MaxP vs SeDR on SciFact with short segments (64 tokens x 8): fine-tuned the same way, then indexed and
searched; reports test nDCG@10 beside the indexing cost (vectors stored, time, size on disk).

Every variant starts from the same model (all-MiniLM-L6-v2), trains with the same recipe (hard negatives from the
plain model's zero-shot run on the training queries, in-batch negatives, late-cache negatives, same steps and seed)
and differs only in how a document becomes vectors. Everything runs through boltir's Trainer (fit, index, search).

    # GPU (the lead's run; about 8 minutes on an H100):
    python benchmarks/sedr_scifact.py --device cuda --data .carry/scifact --model .carry/minilm-fp16
    # CPU smoke test on a slice (minutes):
    python benchmarks/sedr_scifact.py --tiny
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python benchmarks/sedr_scifact.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import lightning_precision, slice_beir, trainer_options, write_report  # noqa: E402

DEFAULT_DATA = ("/work/shared/data/scifact", ".carry/scifact")


def trainer(args: argparse.Namespace, **options: Any):
    from boltir import Trainer

    precision = lightning_precision("bf16" if args.device == "cuda" else "fp32", mixed=True)
    return Trainer(**trainer_options(args.device, precision, **options))


def index_and_search(module: Any, args: argparse.Namespace, work: Path, name: str) -> dict[str, Any]:
    """Index the corpus (timed) and search the test queries; the figures of one table row."""
    from boltir import DataModule, DocDataset, QueryDataset
    from boltir.index import read_manifest

    index_dir = work / f"index-{name}"
    docs = DataModule(DocDataset(args.data), inference_batch_size=args.inference_batch_size)
    start = time.perf_counter()
    trainer(args).index(module, docs, index_dir=index_dir)
    seconds = time.perf_counter() - start
    manifest = read_manifest(index_dir)
    queries = DataModule(QueryDataset(args.data, split="test"), inference_batch_size=args.inference_batch_size)
    search = trainer(args).search(module, queries, index_dir=index_dir, k=100, run_dir=work / f"runs-{name}",
                                  measures=["nDCG@10", "R@100"])
    metrics = next(iter(search.results.values()))
    size = sum(entry["size"] for entry in manifest["files"].values())
    shutil.rmtree(index_dir, ignore_errors=True)
    return {"nDCG@10": metrics["nDCG@10"], "R@100": metrics["R@100"], "vectors": manifest["count"],
            "documents": manifest["documents"], "index_s": seconds, "index_mib": size / 2**20}


def first_stage_run(args: argparse.Namespace, work: Path) -> Path:
    """The plain model's zero-shot top-100 for the training queries: where hard negatives come from."""
    from boltir import BiEncoderModule, DataModule, DocDataset, QueryDataset

    module = BiEncoderModule(args.model)
    trainer(args).index(module, DataModule(DocDataset(args.data), inference_batch_size=args.inference_batch_size),
                        index_dir=work / "index-first-stage")
    queries = DataModule(QueryDataset(args.data, split="train"), inference_batch_size=args.inference_batch_size)
    callback = trainer(args).search(module, queries, index_dir=work / "index-first-stage", k=100,
                                    run_path=work / "first-stage-train.run")
    shutil.rmtree(work / "index-first-stage", ignore_errors=True)
    return callback.written[0]


def variant_module(args: argparse.Namespace, aggregation: str):
    """The starting model for one variant: the same weights, the variant's document side."""
    from boltir import BiEncoderConfig, BiEncoderModule
    from boltir.models import BiEncoderModel, resolve_model_dir

    directory = resolve_model_dir(args.model)
    saved = (directory / "boltir_config.json").is_file()
    base = BiEncoderConfig.load(directory) if saved else BiEncoderModel.default_config(directory)
    segments = {"aggregation": aggregation, "max_segments": args.max_segments}
    config = base.replace(doc_length=args.segment_length, segments=segments)
    return BiEncoderModule(
        args.model, config=config, loss_functions=None,
        in_batch_loss={"name": "infonce", "temperature": args.temperature}, late_cache_size=args.late_cache,
    )


def fine_tune(module: Any, args: argparse.Namespace, run: Path) -> float:
    import lightning.pytorch as pl

    from boltir import DataModule
    from boltir.data import RunTupleDataset

    pl.seed_everything(args.seed, workers=True)
    train = RunTupleDataset(run, args.data, args.data, split="train", list_size=args.list_size,
                            rank_window=(0, args.negative_depth), seed=args.seed)
    start = time.perf_counter()
    trainer(args, max_epochs=args.epochs).fit(module, datamodule=DataModule(train_dataset=train, batch_size=args.batch_size))
    return time.perf_counter() - start


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | model | nDCG@10 | R@100 | vectors stored | vectors / doc | index time s | index MiB | train s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        train = f"{r['train_s']:.0f}" if r.get("train_s") is not None else "-"
        lines.append(
            f"| {r['variant']} | {r['stage']} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | {r['vectors']:,} | "
            f"{r['vectors'] / r['documents']:.2f} | {r['index_s']:.1f} | {r['index_mib']:.1f} | {train} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=next((Path(p) for p in DEFAULT_DATA if Path(p).is_dir()), None))
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tiny", action="store_true", help="a slice of SciFact and one short epoch (CPU, minutes)")
    parser.add_argument("--variants", default="firstp,maxp,sedr")
    parser.add_argument("--segment-length", type=int, default=64)
    parser.add_argument("--max-segments", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--list-size", type=int, default=4, help="documents per query: 1 positive + hard negatives")
    parser.add_argument("--negative-depth", type=int, default=30, help="hard negatives from the first-stage top-k")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--late-cache", type=int, default=512, help="documents kept as late-cache negatives (0: off)")
    parser.add_argument("--inference-batch-size", type=int, default=256)
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the untrained rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("--data: no SciFact folder found; pass the BEIR folder")
    work = Path(tempfile.mkdtemp(prefix="sedr-scifact-"))
    if args.tiny:
        args.data = slice_beir(args.data, work / "scifact-slice", max_docs=120, queries=24, test_queries=16)
        args.epochs, args.batch_size, args.list_size, args.inference_batch_size = 1, 8, 2, 32
        args.late_cache = min(args.late_cache, 16)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        run = first_stage_run(args, work)
        for aggregation in args.variants.split(","):
            if not args.no_zero_shot:
                row = index_and_search(variant_module(args, aggregation), args, work, f"{aggregation}-zero-shot")
                rows.append({"variant": aggregation, "stage": "zero-shot", "train_s": None, **row})
                print(json.dumps(rows[-1]), flush=True)
            module = variant_module(args, aggregation)
            train_s = fine_tune(module, args, run)
            row = index_and_search(module, args, work, f"{aggregation}-fine-tuned")
            rows.append({"variant": aggregation, "stage": "fine-tuned", "train_s": train_s, **row})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import torch

    settings = {k: str(v) for k, v in vars(args).items()}
    meta = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
            "total_s": time.perf_counter() - started, "settings": settings}
    stem = "sedr_scifact" + ("_tiny" if args.tiny else "") + f"_{args.device}"
    markdown = f"{json.dumps(meta)}\n\n{table(rows)}\n"
    write_report(args.out, stem, {"meta": meta, "rows": rows}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
