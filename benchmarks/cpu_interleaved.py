"""CPU speed ratios on a shared machine: every system in one process, timed in interleaved rounds (ST, boltir, ST,
boltir, ...), so load from other jobs hits all of them alike; medians per system.

Indexing: ``SentenceTransformer.encode`` vs ``BiEncoderModule.encode_docs`` over the first ``--docs`` SciFact
documents (fp32 and bf16). Re-ranking: ``CrossEncoder.predict`` vs ``CrossEncoderModule.score`` over the first
``--queries`` x ``--depth`` pairs of a run (a MiniLM-shaped cross-encoder with random weights, as the GPU rows).

Run: ``python -m benchmarks.cpu_interleaved --model MINILM_DIR --data SCIFACT --run BM25.run --out DIR``
"""

from __future__ import annotations

import argparse
import statistics

from .common import dtype_of, emit, minilm_config, random_weights_copy, scifact_corpus, scifact_texts, timed, write_report
from .reranking import rerank_lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 directory")
    parser.add_argument("--data", required=True)
    parser.add_argument("--run", default=None, help="first-stage run for the re-ranking rows (none: indexing only)")
    parser.add_argument("--docs", type=int, default=128)
    parser.add_argument("--queries", type=int, default=2)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()

    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from boltir import BiEncoderModule, CrossEncoderModule

    _, texts = scifact_texts(scifact_corpus(args.data, args.docs))
    lists = rerank_lists(args.data, args.run, args.depth, args.queries) if args.run else []
    pairs = [(q, d) for _, q, _, ds in lists for d in ds]
    classifier = str(random_weights_copy(args.model, classifier=True)) if lists else None
    rows = []
    for precision in args.precisions.split(","):
        dtype = dtype_of(precision)
        st = SentenceTransformer(args.model, device="cpu").to(dtype)
        st.max_seq_length = 256
        bolt = BiEncoderModule(args.model, config=minilm_config()).to(dtype).eval()
        systems = {
            "st": lambda st=st: st.encode(texts, batch_size=args.batch_size),
            "boltir-encode": lambda bolt=bolt: bolt.encode_docs(texts, batch_size=args.batch_size),
        }
        if lists:
            ce = CrossEncoder(classifier, device="cpu", max_length=512).to(dtype)
            module = CrossEncoderModule(classifier, encode_batch_size=args.batch_size,
                                        config_overrides={"query_length": 64, "max_length": 512}).to(dtype).eval()
            systems["st-rerank"] = lambda ce=ce: ce.predict(pairs, batch_size=args.batch_size)
            systems["boltir-score"] = lambda module=module: module.score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists])
        times: dict[str, list[float]] = {name: [] for name in systems}
        with torch.inference_mode():
            for fn in systems.values():
                fn()  # warm-up
            for _ in range(args.rounds):
                for name, fn in systems.items():
                    times[name].append(timed(fn, "cpu"))
        for name, measured in times.items():
            row = "reranking" if "rerank" in name or name == "boltir-score" else "indexing"
            count = len(pairs) if row == "reranking" else len(texts)
            median = statistics.median(measured)
            reference = statistics.median(times["st-rerank" if row == "reranking" else "st"])
            rows.append({"row": row, "system": name, "device": "cpu", "precision": precision, "items": count,
                         "batch_size": args.batch_size, "times": measured, "median_s": median,
                         "per_s": count / median, "vs_st": reference / median, "threads": torch.get_num_threads()})
            emit(rows[-1])
    if args.out:
        write_report(args.out, "cpu_interleaved", rows)


if __name__ == "__main__":
    main()
