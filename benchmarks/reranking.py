"""Re-ranking speed of one system: (query, document) pairs per second for a cross-encoder over a first-stage run
(SciFact's 300 test queries x BM25 top-100 = 30,000 pairs), and peak memory.

Systems (each timed after a warm-up, at the fastest of ``--batch-sizes`` pairs per forward pass, median of
``--repeats`` runs; every system reads the same pairs, ``title + " " + text`` documents, pairs cut at
``--max-length`` tokens with the query cut at 64):
  st              ``sentence_transformers.CrossEncoder.predict`` over the pairs in memory (numpy out)
  boltir-score    ``CrossEncoderModule.score(queries, candidate lists)`` over the same texts (scores to the host)
  boltir-re-rank  ``boltir.Trainer.re_rank``: run file + corpus → RunDataset → model → re-ranked run on disk
Lightning IR's systems are in :mod:`benchmarks.lir_reranking` (its own environment).

Run: ``python -m benchmarks.reranking --system boltir-score --device cuda --precision bf16 --model DIR --data DIR
--run BM25.run``; ``--make-run OUT.run`` writes the BM25 run first (bm25s, through boltir's BM25 engine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import (
    add_system_arguments,
    allow_cudnn_attention,
    beir_queries,
    dtype_of,
    emit,
    lightning_precision,
    padded_rows,
    peak_memory_mib,
    reset_peak_memory,
    scifact_texts,
    sweep_then_repeat,
    timed,
    trainer_options,
    versions,
)

QUERY_LENGTH = 64


def query_length(args: argparse.Namespace) -> int:
    """Queries are cut at 64 tokens (at most half of a pair, for tiny test settings)."""
    return min(QUERY_LENGTH, args.max_length // 2)


def rerank_lists(data: str, run_path: str, depth: int, queries: int | None = None) -> list[tuple[str, str, list[str], list[str]]]:
    """(query id, query text, doc ids, doc texts) for every query of the run, in the run's order, top ``depth``."""
    query_texts = beir_queries(data)
    docs = dict(zip(*scifact_texts(Path(data) / "corpus.jsonl")))
    ranked: dict[str, list[tuple[float, str]]] = {}
    for line in Path(run_path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            query_id, _, doc_id, _, score, *_ = line.split()
            ranked.setdefault(query_id, []).append((-float(score), doc_id))
    lists = []
    for query_id in list(ranked)[:queries]:
        ids = [d for _, d in sorted(ranked[query_id])[:depth]]
        lists.append((query_id, query_texts[query_id], ids, [docs[d] for d in ids]))
    return lists


def subset(lists: list, pairs: int) -> list:
    """The first lists holding about ``pairs`` pairs (for warm-ups)."""
    out, count = [], 0
    for item in lists:
        if count >= pairs:
            break
        out.append(item)
        count += len(item[2])
    return out


def make_run(data: str, path: str, depth: int) -> None:
    """BM25 top-``depth`` of SciFact's test queries, through boltir's BM25 engine (bm25s), as a TREC run."""
    from boltir import BM25IndexConfig, BM25Module, DataModule, DocDataset, QueryDataset, Trainer

    work = Path(tempfile.mkdtemp(prefix="bench-bm25-"))
    trainer = Trainer(**trainer_options("cpu"))
    trainer.index(BM25Module(), DataModule(DocDataset(data), inference_batch_size=1024), work / "bm25", BM25IndexConfig())
    trainer.search(BM25Module(), DataModule(QueryDataset(data, split="test"), inference_batch_size=1024), work / "bm25",
                   k=depth, run_path=path)


def _st(args: argparse.Namespace, lists: list):
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(args.model, device=args.device, max_length=args.max_length)
    if args.precision != "fp32":
        model = model.to(dtype_of(args.precision))
    pairs = [(query, doc) for _, query, _, docs in lists for doc in docs]

    def run(batch_size: int, part: list | None = None) -> float:
        chosen = pairs if part is None else [(q, d) for _, q, _, ds in part for d in ds]
        with torch.inference_mode():
            return timed(lambda: model.predict(chosen, batch_size=batch_size, convert_to_numpy=True), args.device)

    return run


def _module(args: argparse.Namespace, batch_size: int | None = None):
    from boltir import CrossEncoderModule

    module = CrossEncoderModule(args.model, encode_batch_size=batch_size,
                                config_overrides={"query_length": query_length(args), "max_length": args.max_length})
    return padded_rows(module, args.padded)


def _boltir_score(args: argparse.Namespace, lists: list):
    module = _module(args).to(args.device, dtype_of(args.precision)).eval()

    def run(batch_size: int, part: list | None = None) -> float:
        chosen = lists if part is None else part
        module.encode_batch_size = batch_size

        def score() -> None:
            for scores in module.score([q for _, q, _, _ in chosen], [ds for _, _, _, ds in chosen]).scores:
                scores.cpu()

        return timed(score, args.device)

    return run


def _boltir_re_rank(args: argparse.Namespace, lists: list):
    import logging

    from boltir import DataModule, DocDataset, QueryDataset, RunDataset, Trainer
    from boltir.data.run import Run

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    module = _module(args)
    out = Path(tempfile.mkdtemp(prefix="bench-rerank-"))
    queries, corpus = QueryDataset(args.data, split="test"), DocDataset(args.data)

    def dataset(part: list) -> Any:
        run = Run(name="bm25")
        for query_id, _, doc_ids, _ in part:
            run.add(query_id, doc_ids, [float(len(doc_ids) - i) for i in range(len(doc_ids))])
        return RunDataset.from_run(run, queries, corpus, depth=args.depth)

    full = dataset(lists)

    def run(batch_size: int, part: list | None = None) -> float:
        module.encode_batch_size = batch_size
        trainer = Trainer(**trainer_options(args.device, lightning_precision(args.precision)))
        data = DataModule(full if part is None else dataset(part), inference_batch_size=args.queries_per_batch,
                          num_workers=args.num_workers)
        return timed(lambda: trainer.re_rank(module, data, run_path=out / "re-ranked.run", measures=[]), args.device)

    return run


SYSTEMS = {"st": _st, "boltir-score": _boltir_score, "boltir-re-rank": _boltir_re_rank}


def add_arguments(parser: argparse.ArgumentParser, systems: list[str]) -> None:
    """The options every re-ranking system takes (this script's and Lightning IR's)."""
    add_system_arguments(parser, systems)  # --model: a cross-encoder directory (BertForSequenceClassification)
    parser.add_argument("--run", required=True, help="first-stage TREC run of the test queries")
    parser.add_argument("--depth", type=int, default=100, help="candidates per query")
    parser.add_argument("--queries", type=int, default=None, help="first N queries of the run only (CPU)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per pair")
    parser.add_argument("--batch-sizes", default="64,256", help="pairs per forward pass to try")
    parser.add_argument("--queries-per-batch", type=int, default=16, help="re-rank rows: queries per DataLoader batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--warmup-pairs", type=int, default=1000)
    parser.add_argument("--cudnn-attention", action="store_true", help="boltir: allow cuDNN's attention (PyTorch's "
                        "default; boltir leaves it out)")
    parser.add_argument("--padded", action="store_true", help="boltir: pairs in padded rows, never packed end to end "
                        "(boltir before packing)")
    parser.add_argument("--first-pass", action="store_true", help="also time the very first pass over all pairs "
                        "(at the last of --batch-sizes), before any warm-up")
    parser.add_argument("--model-label", default=None, help="the model's name in the results (default: its folder)")


def measure(args: argparse.Namespace, systems: dict, extra_versions: dict[str, str] | None = None) -> None:
    """Warm up, sweep the batch sizes, repeat at the best one and print the result line."""
    if args.cudnn_attention:
        allow_cudnn_attention()
    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    run = systems[args.system](args, lists)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    # A user re-ranks a run once: the first pass pays whatever is built per new input shape (attention plans)
    first_pass = {"first_pass_s": run(sizes[-1])} if args.first_pass else {}
    run(max(sizes), subset(lists, args.warmup_pairs))  # warm-up: kernels, handles, workers
    timing = sweep_then_repeat(run, sizes, args.repeats, lambda: reset_peak_memory(args.device))
    pairs = sum(len(ids) for _, _, ids, _ in lists)
    emit({
        "row": "reranking", "system": args.system, "device": args.device, "precision": args.precision,
        "queries": len(lists), "depth": args.depth, "pairs": pairs, "max_length": args.max_length, **timing, **first_pass,
        "cudnn_attention": args.cudnn_attention, "padded": args.padded,
        "pairs_per_s": pairs / timing["median_s"], "peak_mem_mib": peak_memory_mib(args.device),
        "model": args.model_label or Path(args.model).name, "versions": {**versions(), **(extra_versions or {})},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if "--make-run" in sys.argv:
        parser.add_argument("--make-run", required=True)
        parser.add_argument("--data", required=True)
        parser.add_argument("--depth", type=int, default=100)
        args = parser.parse_args()
        make_run(args.data, args.make_run, args.depth)
        return
    add_arguments(parser, sorted(SYSTEMS))
    measure(parser.parse_args(), SYSTEMS)


if __name__ == "__main__":
    main()
