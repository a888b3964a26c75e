"""Training speed: samples (queries) per second of a bi-encoder trained with in-batch negatives.

The same data for every system: SciFact's train queries, each with one relevant document (title + text), every
other document of the batch a negative; InfoNCE at temperature 0.05 (sentence-transformers'
MultipleNegativesRankingLoss at its default scale 20); 256 tokens; same batch size and precision.
Systems:
  boltir  ``boltir.Trainer.fit`` on a TupleDataset with ``in_batch_loss: infonce``
  st      ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (needs the ``datasets`` package)
Timed from the end of step ``--warmup-steps`` to the last step (kernels and workers are warm by then).

Run: ``python -m benchmarks.training --system boltir --device cuda --precision bf16 --model DIR --data SCIFACT_DIR``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from .common import (
    add_system_arguments,
    allow_cudnn_attention,
    beir_judged,
    beir_queries,
    emit,
    lightning_precision,
    minilm_config,
    peak_memory_mib,
    reset_peak_memory,
    scifact_texts,
    synchronize,
    trainer_options,
    versions,
)


def training_samples(data: str, count: int) -> list[tuple[str, str, str, str]]:
    """``count`` (query id, query, document id, relevant document) of SciFact's train split, cycled as needed
    (read without boltir, so Lightning IR's environment can use it too)."""
    judged = beir_judged(data, "train")
    docs = dict(zip(*scifact_texts(Path(data) / "corpus.jsonl")))
    samples = []
    for query_id, query in beir_queries(data).items():
        samples += [(query_id, query, d, docs[d]) for d in sorted(judged.get(query_id, ())) if d in docs]
    return [samples[i % len(samples)] for i in range(count)]


def training_pairs(data: str, count: int) -> list[tuple[str, str]]:
    """``count`` (query, relevant document) pairs from SciFact's train split, cycled as needed."""
    return [(query, doc) for _, query, _, doc in training_samples(data, count)]


class StepClock:
    """Wall time from the end of a warm-up step to the end of the last step (the device drained at both)."""

    def __init__(self, device: str, warmup: int) -> None:
        self.device, self.warmup, self.steps, self.start, self.end = device, warmup, 0, 0.0, 0.0

    def step_done(self) -> None:
        self.steps += 1
        if self.steps == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()
        elif self.steps > self.warmup:
            synchronize(self.device)
            self.end = time.perf_counter()

    @property
    def timed_steps(self) -> int:
        return self.steps - self.warmup


def _boltir(args: argparse.Namespace, clock: StepClock) -> None:
    import lightning.pytorch as pl

    from boltir import BiEncoderModule, DataModule, Trainer
    from boltir.data.tuples import TupleDataset

    path = Path(tempfile.mkdtemp(prefix="bench-train-")) / "tuples.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for query, doc in training_pairs(args.data, args.batch_size * args.steps):
            handle.write(json.dumps({"query": query, "pos": [doc]}) + "\n")

    class Clock(pl.Callback):
        def on_train_batch_end(self, *_args, **_kwargs) -> None:
            clock.step_done()

    callbacks: list[pl.Callback] = [Clock()]
    if args.phases:
        callbacks.append(phase_clock(args.device, args.warmup_steps))
    if args.profile:
        callbacks.append(op_profile(args))
    module = BiEncoderModule(args.model, config=minilm_config(256, query_length=256), loss_functions=None,
                             in_batch_loss={"name": "infonce", "temperature": 0.05})
    trainer = Trainer(**trainer_options(args.device, lightning_precision(args.precision, mixed=True), args.devices,
                                        strategy="ddp" if args.devices > 1 else "auto", max_steps=args.steps,
                                        callbacks=callbacks, num_sanity_val_steps=0))
    data = DataModule(train_dataset=TupleDataset(path, list_size=1), batch_size=args.batch_size, num_workers=args.num_workers)
    trainer.fit(module, data)


def op_profile(args: argparse.Namespace):
    """A Lightning callback running the PyTorch profiler over 5 steps after the warm-up: ``ops-<system>-w<workers>.txt``
    in ``--profile`` holds the ops by self CPU time and by self device time (where the host and the device spend a
    step). Built in a function so that importing this module does not import Lightning."""
    import lightning.pytorch as pl
    import torch

    class _OpProfile(pl.Callback):
        def __init__(self) -> None:
            self.steps, self.profiler = 0, None

        def on_train_batch_start(self, *_args, **_kwargs) -> None:
            if self.steps == args.warmup_steps + 2:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if args.device.startswith("cuda"):
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()

        def on_train_batch_end(self, *_args, **_kwargs) -> None:
            self.steps += 1
            if self.profiler is not None and self.steps == args.warmup_steps + 7:
                synchronize(args.device)
                self.profiler.__exit__(None, None, None)
                table = self.profiler.key_averages()
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                keys = ["self_cpu_time_total"] + (["self_device_time_total"] if args.device.startswith("cuda") else [])
                text = "\n\n".join(f"5 steps by {k}\n" + table.table(sort_by=k, row_limit=35) for k in keys)
                (Path(args.profile) / f"ops-{args.system}-w{args.num_workers}.txt").write_text(text)
                self.profiler = None

    return _OpProfile()


def phase_clock(device: str, warmup: int):
    """A Lightning callback printing ms per step spent fetching the batch, in the forward pass, the backward pass
    and the optimiser step, the device drained at each boundary (so phases add up, without the overlap a normal
    step has)."""
    import lightning.pytorch as pl

    class _PhaseClock(pl.Callback):
        def __init__(self) -> None:
            self.last: float | None = None  # when the previous phase ended
            self.totals: dict[str, float] = {}
            self.steps = 0

        def _mark(self, name: str) -> None:
            """``name`` is the phase ending now."""
            synchronize(device)
            now = time.perf_counter()
            if self.steps >= warmup and self.last is not None:
                self.totals[name] = self.totals.get(name, 0.0) + now - self.last
            self.last = now

        def on_train_batch_start(self, *_args, **_kwargs) -> None:
            self._mark("data")

        def on_before_backward(self, *_args, **_kwargs) -> None:
            self._mark("forward")

        def on_before_optimizer_step(self, *_args, **_kwargs) -> None:
            self._mark("backward")

        def on_train_batch_end(self, *_args, **_kwargs) -> None:
            self._mark("optimizer")
            self.steps += 1

        def on_train_end(self, *_args, **_kwargs) -> None:
            timed = max(1, self.steps - warmup)
            emit({"row": "training-phases", "ms_per_step": {k: 1000 * v / timed for k, v in self.totals.items()}})

    return _PhaseClock()


def _st(args: argparse.Namespace, clock: StepClock) -> None:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    pairs = training_pairs(args.data, args.batch_size * args.steps)
    dataset = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [d for _, d in pairs]})
    model = SentenceTransformer(args.model, device=args.device)
    model.max_seq_length = 256

    class Clock(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs) -> None:
            clock.step_done()

    training_args = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-st-train-"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, learning_rate=2e-5, bf16=args.precision == "bf16", fp16=args.precision == "fp16",
        use_cpu=not args.device.startswith("cuda"), save_strategy="no", report_to=[], logging_steps=10**9,
        dataloader_num_workers=args.num_workers, disable_tqdm=True,
    )
    SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset,
                               loss=MultipleNegativesRankingLoss(model), callbacks=[Clock()]).train()


SYSTEMS = {"boltir": _boltir, "st": _st}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_system_arguments(parser, sorted(SYSTEMS), data_help="SciFact BEIR folder (train split)")
    parser.add_argument("--batch-size", type=int, default=64, help="queries per step (each with its positive)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--cudnn-attention", action="store_true", help="boltir: allow cuDNN's attention (PyTorch's "
                        "default; boltir leaves it out)")
    parser.add_argument("--profile", help="boltir: a folder for the PyTorch profiler's tables of 5 steps")
    parser.add_argument("--phases", action="store_true", help="boltir: also print ms per step of data / forward / "
                        "backward / optimiser, the device drained between phases")
    parser.add_argument("--devices", type=int, default=1, help="boltir: processes (GPUs) under DDP, each with "
                        "--batch-size queries; in-batch negatives are gathered across them")
    args = parser.parse_args()
    if args.devices > 1 and args.system != "boltir":
        parser.error("--devices > 1 is measured for boltir only")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    if args.cudnn_attention:
        allow_cudnn_attention()
    clock = StepClock(args.device, args.warmup_steps)
    reset_peak_memory(args.device)
    SYSTEMS[args.system](args, clock)
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:  # under DDP every rank runs this script; rank 0 reports
        return
    seconds = clock.end - clock.start
    samples = clock.timed_steps * args.batch_size * args.devices  # each device trains on its own batch
    emit({
        "row": "training", "system": args.system, "device": args.device, "precision": args.precision,
        "batch_size": args.batch_size, "num_workers": args.num_workers, "devices": args.devices,
        "cudnn_attention": args.cudnn_attention, "timed_steps": clock.timed_steps, "seconds": seconds,
        "samples_per_s": samples / seconds if seconds > 0 else None,
        "peak_mem_mib": peak_memory_mib(args.device), "versions": versions(),
    })


if __name__ == "__main__":
    main()
