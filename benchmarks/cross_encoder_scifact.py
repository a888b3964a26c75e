"""SciFact re-ranking: BM25 top-k, re-ranked zero-shot by the MS MARCO MiniLM-L12 cross-encoder and by a
cross-encoder fine-tuned from all-MiniLM-L6-v2 on SciFact train (BM25 negatives), all through boltir's API.

Steps: (1) BM25 (bm25s) index of the corpus; top-k runs for the test queries and, for training, the train
queries; (2) zero-shot re-ranking of the test run; (3) fine-tuning with ``Trainer.fit`` on lists of one
judged positive and BM25 negatives (listwise cross-entropy), then re-ranking the test run. Results go to
``--out`` as JSON and a markdown table.

    # GPU (full settings):
    python benchmarks/cross_encoder_scifact.py --data .carry/scifact --base .carry/minilm-fp16 \\
        --device cuda --precision bf16-mixed --out benchmarks/results
    # the Set-Encoder (candidates of a list attend to each other) with the same backbone and budget:
    python benchmarks/cross_encoder_scifact.py ... --attention set --zero-shot ''
    # CPU smoke test (tiny settings):
    python benchmarks/cross_encoder_scifact.py --max-queries 3 --depth 5 --train-queries 8 --epochs 1 \\
        --max-length 64 --out /tmp/ce-smoke
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python benchmarks/cross_encoder_scifact.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import trainer_options, write_report  # noqa: E402
from boltir import (  # noqa: E402
    BM25IndexConfig,
    BM25Module,
    CrossEncoderConfig,
    CrossEncoderModule,
    DataModule,
    DocDataset,
    LinearWarmupDecay,
    QueryDataset,
    Run,
    RunDataset,
    RunTupleDataset,
    Trainer,
    evaluate,
    format_table,
)

MEASURES = ["nDCG@10", "RR@10", "R@100"]


def trainer(args: argparse.Namespace, **extra) -> Trainer:
    return Trainer(**{**trainer_options(args.device, args.precision, enable_progress_bar=args.progress), **extra})


def subset(queries: QueryDataset, count: int | None, seed: int) -> QueryDataset:
    """The first ``count`` queries of a shuffled order (all of them when count is None)."""
    if count is not None and count < len(queries.queries):
        queries.queries = random.Random(seed).sample(queries.queries, count)
        kept = {q.query_id for q in queries.queries}
        queries.qrels = {q: judged for q, judged in (queries.qrels or {}).items() if q in kept}
    return queries


def bm25_runs(args: argparse.Namespace, work: Path) -> dict[str, Run]:
    """BM25 top-``depth`` runs of the test and train queries (step 1)."""
    t = trainer(args, accelerator="cpu", precision="32-true")
    t.index(BM25Module(), DataModule(DocDataset(args.data), inference_batch_size=1024), work / "bm25", BM25IndexConfig())
    runs = {}
    for split, count in (("test", args.max_queries), ("train", args.train_queries)):
        queries = subset(QueryDataset(args.data, split=split), count, args.seed)
        callback = t.search(BM25Module(), DataModule(queries, inference_batch_size=1024), work / "bm25", k=args.depth,
                            run_path=work / f"bm25-{split}.run", measures=MEASURES)
        runs[split] = callback.runs[0]
    return runs


def re_rank(args: argparse.Namespace, module: CrossEncoderModule, run: Run, test: QueryDataset, corpus: DocDataset,
            path: Path) -> dict[str, float]:
    data = DataModule(RunDataset.from_run(run, test, corpus, depth=args.depth), inference_batch_size=1)
    start = time.perf_counter()
    callback = trainer(args).re_rank(module, data, run_path=path, measures=MEASURES)
    seconds = time.perf_counter() - start
    pairs = sum(len(run.rankings[q]) for q in run)
    return {**next(iter(callback.results.values())), "seconds": round(seconds, 1), "pairs": pairs}


class FineTunedCrossEncoder(CrossEncoderModule):
    """The cross-encoder with the benchmark's optimiser: AdamW with linear warm-up (10%) and decay."""

    def __init__(self, *args, lr: float = 3e-5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lr = lr

    def configure_optimizers(self):
        import torch

        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.01)
        warmup = max(int(0.1 * self.trainer.estimated_stepping_batches), 1)
        schedule = LinearWarmupDecay(optimizer, warmup_steps=warmup)  # decays to 0 at the end of training
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fine_tune(args: argparse.Namespace, train_run: Path, work: Path) -> CrossEncoderModule:
    """Step 3: lists of one positive and BM25 negatives from SciFact train, listwise cross-entropy."""
    config = CrossEncoderConfig(pooling="cls", query_length=args.query_length, max_length=args.max_length,
                                attention=args.attention, set_depth=args.set_depth,
                                interaction_token=args.interaction_token)
    module = FineTunedCrossEncoder(args.base, config=config, encode_batch_size=args.list_size * args.batch_size,
                                   loss_functions="infonce", lr=args.lr)
    train = RunTupleDataset(train_run, args.data, args.data, split="train", list_size=args.list_size,
                            rank_window=(0, args.depth), seed=args.seed)
    fit = trainer(args, max_epochs=args.epochs, gradient_clip_val=1.0)
    fit.fit(module, datamodule=DataModule(train_dataset=train, batch_size=args.batch_size))
    module.save_pretrained(work / "fine-tuned")
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/scifact", help="BEIR SciFact folder")
    parser.add_argument("--base", default="sentence-transformers/all-MiniLM-L6-v2", help="backbone to fine-tune")
    parser.add_argument("--zero-shot", default="cross-encoder/ms-marco-MiniLM-L-12-v2",
                        help="hub name or directory of the zero-shot cross-encoder; '' skips it")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--depth", type=int, default=100, help="BM25 candidates re-ranked per query")
    parser.add_argument("--max-queries", type=int, default=None, help="test queries (default: all 300)")
    parser.add_argument("--train-queries", type=int, default=None, help="train queries (default: all 809)")
    parser.add_argument("--train-run", default=None, help="a run of the train queries to draw negatives from "
                        "(default: BM25's top --depth)")
    parser.add_argument("--epochs", type=int, default=5, help="0 skips fine-tuning")
    parser.add_argument("--batch-size", type=int, default=8, help="queries per training batch")
    parser.add_argument("--list-size", type=int, default=16, help="1 positive + negatives per query")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--query-length", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--attention", default="full", choices=["full", "set"],
                        help="the fine-tuned model's attention: full (pointwise) or set (Set-Encoder)")
    parser.add_argument("--set-depth", type=int, default=None, help="Set-Encoder: lists shorter than this also see "
                        "drawn interaction states (Lightning IR's depth; e.g. 100 to train on lists of 16 for top-100)")
    parser.add_argument("--interaction-token", default=None,
                        help="Set-Encoder: a token added to each passage whose states the others attend to (e.g. '[MASK]'; "
                        "default: the passage's first token, which is also the pooled one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    import lightning.pytorch as pl

    pl.seed_everything(args.seed, verbose=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # the re-ranked runs go here too
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = bm25_runs(args, work)
        test = subset(QueryDataset(args.data, split="test"), args.max_queries, args.seed)
        corpus = DocDataset(args.data)
        assert test.qrels is not None
        results["BM25"] = evaluate(runs["test"], test.qrels, MEASURES)
        if args.zero_shot:
            module = CrossEncoderModule(args.zero_shot, encode_batch_size=args.depth)
            results["BM25 >> MS MARCO MiniLM-L12 (zero-shot)"] = re_rank(args, module, runs["test"], test, corpus,
                                                                         out / "scifact-ms-marco-minilm-l12.run")
        if args.epochs > 0:
            start = time.perf_counter()
            module = fine_tune(args, Path(args.train_run) if args.train_run else work / "bm25-train.run", work)
            train_seconds = round(time.perf_counter() - start, 1)
            kind = " Set-Encoder" if args.attention == "set" else ""
            suffix = "-set" if args.attention == "set" else ""
            results[f"BM25 >> MiniLM-L6{kind} fine-tuned on SciFact train"] = {
                **re_rank(args, module, runs["test"], test, corpus, out / f"scifact-minilm-l6-fine-tuned{suffix}.run"),
                "train_seconds": train_seconds}
    settings = {k: v for k, v in vars(args).items() if k not in ("progress", "out")}
    name = "cross_encoder_scifact" + ("_set" if args.attention == "set" else "")
    table = format_table({name: {m: r[m] for m in MEASURES} for name, r in results.items()})
    markdown = f"Settings: {settings}\n\n```\n{table}\n```\n"
    write_report(out, name, {"settings": settings, "results": results}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
