"""CPU precision levers on a SciFact slice: fp32 vs bf16 vs dynamic int8 (``torch.ao`` quantised Linear layers)
for all-MiniLM-L6-v2 through ``BiEncoderModule.encode_docs``: nDCG@10 of exact cosine search and encoding time,
timed in interleaved rounds (the machine is shared).

The slice: the first ``--queries`` SciFact test queries, their relevant documents and the first ``--docs``
documents of the corpus (a harder-than-random distractor set would need a first stage; this one is for the
*difference* between precisions, not for the absolute figure).

Run: ``python -m benchmarks.cpu_precision --model MINILM_DIR --data SCIFACT --out DIR``
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

from .common import emit, scifact_corpus, scifact_texts, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    from boltir import BiEncoderModule, QueryDataset, Run, evaluate

    queries = QueryDataset(args.data, split="test")
    chosen = queries.queries[: args.queries]
    qrels = {q.query_id: queries.qrels[q.query_id] for q in chosen}
    relevant = {d for judged in qrels.values() for d in judged}
    ids, texts = scifact_texts(scifact_corpus(args.data))
    keep = [i for i, d in enumerate(ids) if d in relevant or i < args.docs]
    ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
    config = {"doc_pooling": "mean", "query_pooling": "mean", "similarity": "cosine", "normalize": True, "doc_length": 256}
    base = BiEncoderModule(args.model, config=config).eval()
    int8 = copy.deepcopy(base)
    int8.model.backbone = torch.ao.quantization.quantize_dynamic(int8.model.backbone, {torch.nn.Linear}, dtype=torch.qint8)
    modules = {"fp32": base, "bf16": copy.deepcopy(base).to(torch.bfloat16), "int8-dynamic": int8}
    vectors, times = {}, {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, module in modules.items():
            times[name].append(timed(lambda m=module, n=name: vectors.__setitem__(n, m.encode_docs(texts).float()), "cpu"))
    rows = []
    for name, module in modules.items():
        query_vectors = module.encode_queries([q.text for q in chosen]).float()
        scores = query_vectors @ vectors[name].T
        top = scores.topk(10, dim=1)
        run = Run(name=name)
        for q, s, positions in zip(chosen, top.values.tolist(), top.indices.tolist()):
            run.add(q.query_id, [ids[p] for p in positions], s)
        ndcg = evaluate(run, qrels, ["nDCG@10"])["nDCG@10"]
        cosine = torch.nn.functional.cosine_similarity(vectors[name], vectors["fp32"]).min().item()
        seconds = statistics.median(times[name])
        rows.append({"precision": name, "docs": len(texts), "queries": len(chosen), "ndcg@10": ndcg,
                     "min_cosine_vs_fp32": cosine, "encode_s": seconds, "docs_per_s": len(texts) / seconds,
                     "threads": torch.get_num_threads()})
        emit(rows[-1])
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "cpu_precision.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
