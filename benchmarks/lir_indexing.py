"""Indexing speed of Lightning IR (PyPI ``lightning-ir``; needs ``transformers<5``, so it runs in its own
environment): the same model, texts, device and precision as :mod:`benchmarks.indexing`.

Systems:
  lir-index   ``LightningIRTrainer.index`` with ``IndexCallback``: corpus file (registered as a local
              ir_datasets dataset) → model → Faiss flat index (Torch dense index where Faiss is missing)
  lir-encode  ``BiEncoderModule.forward(IndexBatch)`` over the texts in memory, batch after batch

Run (Lightning IR's python): ``python -m benchmarks.lir_indexing --system lir-index --device cuda ...``
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from .common import (
    add_system_arguments,
    dtype_of,
    emit,
    lightning_precision,
    peak_memory_mib,
    reset_peak_memory,
    scifact_corpus,
    scifact_texts,
    sweep_then_repeat,
    timed,
    trainer_options,
    versions,
)


def _module(args: argparse.Namespace):
    from lightning_ir import BiEncoderModule
    from lightning_ir.models import DprConfig

    config = DprConfig(
        query_length=64,
        doc_length=args.doc_length,
        similarity_function="cosine",
        normalize=True,
        query_pooling_strategy="mean",
        doc_pooling_strategy="mean",
        projection=None,
    )
    return BiEncoderModule(model_name_or_path=args.model, config=config)


def _tsv(corpus: Path, name: str) -> Path:
    """The corpus as ``id<TAB>title text`` lines, which ir_datasets' TsvDocs reads."""
    ids, texts = scifact_texts(corpus)
    path = Path(tempfile.mkdtemp(prefix="bench-lir-")) / f"{name}.tsv"
    path.write_text("".join(f"{i}\t{t.replace(chr(9), ' ').replace(chr(10), ' ')}\n" for i, t in zip(ids, texts)), encoding="utf-8")
    return path


def _index_config():
    try:
        import faiss  # noqa: F401
        from lightning_ir import FaissFlatIndexConfig

        return FaissFlatIndexConfig()
    except ImportError:
        from lightning_ir import TorchDenseIndexConfig

        return TorchDenseIndexConfig()


def _lir_index(args: argparse.Namespace, corpus: Path):
    from lightning_ir import DocDataset, IndexCallback, LightningIRDataModule, LightningIRTrainer
    from lightning_ir.data.external_datasets.ir_datasets_utils import register_new_dataset

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    module = _module(args)
    out = Path(tempfile.mkdtemp(prefix="bench-lir-index-"))
    registered: dict[int, str] = {}

    def dataset_id(limit: int | None) -> str:
        key = limit or 0
        if key not in registered:
            name = f"bench-corpus-{key}-{os.getpid()}"
            source = scifact_corpus(args.data, limit=limit) if limit else corpus
            register_new_dataset(name, docs=str(_tsv(source, name)))
            registered[key] = name
        return registered[key]

    def run(batch_size: int, subset: list[str] | None = None) -> float:
        callback = IndexCallback(index_config=_index_config(), index_dir=out / "index", overwrite=True)
        trainer = LightningIRTrainer(callbacks=[callback], **trainer_options(args.device, lightning_precision(args.precision)))
        data = LightningIRDataModule(
            inference_datasets=[DocDataset(dataset_id(len(subset) if subset else None))],
            inference_batch_size=batch_size,
            num_workers=args.num_workers,
        )
        return timed(lambda: trainer.index(module, data, verbose=False), args.device)

    return run


def _lir_encode(args: argparse.Namespace, corpus: Path):
    import torch
    from lightning_ir.data import IndexBatch

    ids, texts = scifact_texts(corpus)
    module = _module(args).to(args.device, dtype_of(args.precision)).eval()

    def encode_all(batch_size: int, items: list[str]) -> None:
        vectors = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                batch = IndexBatch(doc_ids=ids[start : start + batch_size], docs=items[start : start + batch_size])
                vectors.append(module.forward(batch).doc_embeddings.embeddings.cpu())

    def run(batch_size: int, subset: list[str] | None = None) -> float:
        return timed(lambda: encode_all(batch_size, subset or texts), args.device)

    return run


SYSTEMS = {"lir-index": _lir_index, "lir-encode": _lir_encode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_system_arguments(parser, sorted(SYSTEMS))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--doc-length", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=min(8, max(0, (os.cpu_count() or 1) - 2)))
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    corpus = scifact_corpus(args.data, args.limit)
    run = SYSTEMS[args.system](args, corpus)
    _, texts = scifact_texts(corpus)
    run(max(int(b) for b in args.batch_sizes.split(",")), texts[:1024])
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    timing = sweep_then_repeat(run, sizes, args.repeats, lambda: reset_peak_memory(args.device))
    emit(
        {
            "row": "indexing",
            "tag": args.tag,
            "system": args.system,
            "device": args.device,
            "precision": args.precision,
            "docs": len(texts),
            **timing,
            "docs_per_s": len(texts) / timing["median_s"],
            "peak_mem_mib": peak_memory_mib(args.device),
            "num_workers": args.num_workers if args.system == "lir-index" else None,
            "versions": versions(("torch", "transformers", "lightning", "lightning-ir", "faiss-cpu")),
        }
    )


if __name__ == "__main__":
    main()
