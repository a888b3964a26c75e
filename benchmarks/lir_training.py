"""Training speed of Lightning IR (PyPI ``lightning-ir``, its own environment with ``transformers<5``): the same
bi-encoder, pairs, batch size, precision and loss as :mod:`benchmarks.training`.

``LightningIRTrainer.fit`` on a ``RunDataset`` of the (query, relevant document) pairs, one document per query
(JSONL with the texts, which it reads without an ir_datasets registration), ``InBatchCrossEntropy`` over every
document of the batch (its positive first), cosine similarity, mean pooling, 256 tokens.

Run (Lightning IR's python): ``python -m benchmarks.lir_training --device cuda --precision bf16 --model DIR --data DIR``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from .common import emit, lightning_precision, peak_memory_mib, reset_peak_memory, trainer_options, versions
from .training import StepClock, training_samples


def train_run(data: str, count: int, directory: Path) -> Path:
    """``count`` training samples as the JSONL run Lightning IR's RunDataset reads: one (query, relevant document)
    row each, under distinct query ids (so that each row is one sample)."""
    path = directory / "bench-train.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i, (_, query, doc_id, doc) in enumerate(training_samples(data, count)):
            handle.write(json.dumps({"query_id": f"q{i}", "query": query, "doc_id": doc_id, "text": doc, "rank": 1,
                                     "score": 1.0, "relevance": 1}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", default="lir", choices=["lir"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="SciFact BEIR folder (train split)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--num-workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    import lightning.pytorch as pl
    import torch
    from lightning_ir import BiEncoderModule, LightningIRDataModule, LightningIRTrainer, RunDataset
    from lightning_ir.loss import InBatchCrossEntropy
    from lightning_ir.models import DprConfig

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    path = train_run(args.data, args.batch_size * args.steps, Path(tempfile.mkdtemp(prefix="bench-lir-train-")))
    clock = StepClock(args.device, args.warmup_steps)

    class Clock(pl.Callback):
        def on_train_batch_end(self, *_args, **_kwargs) -> None:
            clock.step_done()

    config = DprConfig(query_length=256, doc_length=256, similarity_function="cosine", normalize=True,
                       query_pooling_strategy="mean", doc_pooling_strategy="mean", projection=None)
    module = BiEncoderModule(model_name_or_path=args.model, config=config, loss_functions=[InBatchCrossEntropy("first", "all")])
    module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=2e-5)  # type: ignore[method-assign]
    trainer = LightningIRTrainer(**trainer_options(args.device, lightning_precision(args.precision, mixed=True),
                                                   max_steps=args.steps, callbacks=[Clock()], num_sanity_val_steps=0))
    data = LightningIRDataModule(train_dataset=RunDataset(path, sample_size=1, targets="relevance"),
                                 train_batch_size=args.batch_size, num_workers=args.num_workers)
    reset_peak_memory(args.device)
    trainer.fit(module, data)
    seconds = clock.end - clock.start
    emit({
        "row": "training", "system": "lir", "device": args.device, "precision": args.precision,
        "batch_size": args.batch_size, "num_workers": args.num_workers, "devices": 1, "timed_steps": clock.timed_steps,
        "seconds": seconds,
        "samples_per_s": clock.timed_steps * args.batch_size / seconds if seconds > 0 else None,
        "peak_mem_mib": peak_memory_mib(args.device),
        "versions": versions(("torch", "transformers", "lightning", "lightning-ir")),
    })


if __name__ == "__main__":
    main()
