"""Indexing speed of one system: documents per second over a corpus, and peak memory.

Systems (each timed after a warm-up, at the fastest of ``--batch-sizes``, median of ``--repeats`` runs):
  st             ``SentenceTransformer.encode`` over the texts in memory (numpy out, as users call it)
  boltir-encode  ``BiEncoderModule.encode_docs`` over the same texts (vectors copied to the host)
  boltir-index   ``boltir.Trainer.index``: corpus file → DataLoader workers → model → Faiss flat index on disk
                 (``--devices N``: N processes under DDP, each encoding its share, merged into one index)

Run: ``python -m benchmarks.indexing --system boltir-index --device cuda --precision bf16 --model DIR --data DIR``
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .common import (
    add_system_arguments,
    dtype_of,
    emit,
    lightning_precision,
    minilm_config,
    padded_rows,
    peak_memory_mib,
    reset_peak_memory,
    scifact_corpus,
    scifact_texts,
    sweep_then_repeat,
    timed,
    trainer_options,
    versions,
)


def _st(args: argparse.Namespace, corpus: Path):
    import torch
    from sentence_transformers import SentenceTransformer

    _, texts = scifact_texts(corpus)
    model = SentenceTransformer(args.model, device=args.device)
    model.max_seq_length = args.doc_length
    if args.precision != "fp32":
        model = model.to(dtype_of(args.precision))
    model.eval()

    def run(batch_size: int, subset: list[str] | None = None) -> float:
        with torch.inference_mode():
            return timed(lambda: model.encode(subset or texts, batch_size=batch_size, convert_to_numpy=True), args.device)

    return run, len(texts), {"sentence-transformers": versions(("sentence-transformers",)).get("sentence-transformers")}


def _boltir_encode(args: argparse.Namespace, corpus: Path):
    from boltir import BiEncoderModule

    _, texts = scifact_texts(corpus)
    module = padded_rows(BiEncoderModule(args.model, config=minilm_config(args.doc_length)).to(
        args.device, dtype_of(args.precision)).eval(), args.padded)

    def run(batch_size: int, subset: list[str] | None = None) -> float:
        return timed(lambda: module.encode_docs(subset or texts, batch_size=batch_size).cpu(), args.device)

    return run, len(texts), {}


def _boltir_index(args: argparse.Namespace, corpus: Path):
    import logging

    from boltir import BiEncoderModule, DataModule, DocDataset, FaissIndexConfig, Trainer

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    module = padded_rows(BiEncoderModule(args.model, config=minilm_config(args.doc_length)), args.padded)
    # the same folder in every rank: under DDP rank 0 launches the others, which inherit its environment
    out = Path(os.environ.setdefault("BOLTIR_BENCH_INDEX_DIR", tempfile.mkdtemp(prefix="bench-index-")))
    count = len(scifact_texts(corpus)[1])

    def run(batch_size: int, subset: list[str] | None = None) -> float:
        source = scifact_corpus(args.data, limit=len(subset)) if subset else corpus
        trainer = Trainer(**trainer_options(args.device, lightning_precision(args.precision), args.devices,
                                            strategy="ddp" if args.devices > 1 else "auto"))
        data = DataModule(DocDataset(source), inference_batch_size=batch_size, num_workers=args.num_workers)
        return timed(lambda: trainer.index(module, data, out / "index", FaissIndexConfig()), args.device)

    return run, count, {}


SYSTEMS = {"st": _st, "boltir-encode": _boltir_encode, "boltir-index": _boltir_index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_system_arguments(parser, sorted(SYSTEMS))
    parser.add_argument("--limit", type=int, default=None, help="first N documents only")
    parser.add_argument("--repeat-corpus", type=int, default=1, help="repeat the (limited) corpus this many times")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--doc-length", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=min(8, max(0, (os.cpu_count() or 1) - 2)))
    parser.add_argument("--padded", action="store_true", help="boltir: texts in padded rows, never packed end to end "
                        "(boltir before packing)")
    parser.add_argument("--tag", default="", help="free text copied into the result (e.g. the row name)")
    parser.add_argument("--devices", type=int, default=1, help="boltir-index: processes (GPUs) under DDP")
    parser.add_argument("--points", default="", help="then time one run per LIMITxREPEAT collection (scaling rows)")
    args = parser.parse_args()

    corpus = scifact_corpus(args.data, args.limit, args.repeat_corpus)
    run, count, extra = SYSTEMS[args.system](args, corpus)
    _, texts = scifact_texts(corpus)
    run(max(int(b) for b in args.batch_sizes.split(",")), texts[:1024])  # warm-up: kernels, handles, workers
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    timing = sweep_then_repeat(run, sizes, args.repeats, lambda: reset_peak_memory(args.device))
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:  # under DDP every rank runs this script; rank 0 reports
        return
    emit(
        {
            "row": "indexing",
            "tag": args.tag,
            "system": args.system,
            "device": args.device,
            "precision": args.precision,
            "docs": count,
            **timing,
            "docs_per_s": count / timing["median_s"],
            "peak_mem_mib": peak_memory_mib(args.device),
            "num_workers": args.num_workers if args.system == "boltir-index" else None,
            "padded": args.padded,
            "devices": args.devices,
            "versions": {**versions(), **extra},
        }
    )
    for point in filter(None, args.points.split(",")):
        limit, repeat = (int(x) for x in point.split("x"))
        run_point, count, _ = SYSTEMS[args.system](args, scifact_corpus(args.data, limit, repeat))
        seconds = run_point(timing["batch_size"])
        emit({"row": "scaling", "system": args.system, "device": args.device, "precision": args.precision,
              "docs": count, "median_s": seconds, "docs_per_s": count / seconds, "batch_size": timing["batch_size"]})


if __name__ == "__main__":
    main()
