"""Where re-ranking time goes: tokenising the pairs on the host vs the cross-encoder's forward on the device.

Prints one JSON line per measurement (median of ``--repeats``): ``tokenize`` (every batch's pairs, one thread,
texts cached across batches as ``score`` does), ``forward`` (the model on the already tokenised batches) and
``score`` (the whole ``CrossEncoderModule.score``: on a GPU the next batch is tokenised while this one is scored).
If ``score`` is close to ``forward``, the GPU is the bound; if close to ``tokenize``, the host is.
Run: ``python -m benchmarks.profile_rerank --system boltir-score --device cuda --precision bf16 --model DIR
--data SCIFACT_DIR --run BM25.run --batch-sizes 256``
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import dtype_of, emit, median_seconds
from .reranking import _module, add_arguments, rerank_lists


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, ["boltir-score"])
    args = parser.parse_args()
    size = int(args.batch_sizes.split(",")[0])
    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    queries = [q for _, q, _, ds in lists for _ in ds]
    docs = [d for _, _, _, ds in lists for d in ds]
    module = _module(args, size).to(args.device, dtype_of(args.precision)).eval()
    order = sorted(range(len(docs)), key=lambda i: len(queries[i]) + len(docs[i]), reverse=True)
    parts = [order[start : start + size] for start in range(0, len(order), size)]

    def tokenize() -> list:
        cache: dict[str, Any] = {}
        return [module.model.tokenize_pairs([queries[i] for i in p], [docs[i] for i in p], cache=cache) for p in parts]

    batches = [b.to(args.device) for b in tokenize()]

    def forward() -> None:
        with torch.inference_mode():
            for batch in batches:
                module.model(batch)

    forward()
    common = {"pairs": len(docs), "batch": size, "precision": args.precision, "device": args.device}
    emit({"what": "tokenize", **common, "s": median_seconds(tokenize, args.repeats, "cpu")})
    emit({"what": "forward", **common, "s": median_seconds(forward, args.repeats, args.device),
          "padded_tokens": sum(b.inputs["input_ids"].numel() for b in batches),
          "real_tokens": int(sum(b.inputs["attention_mask"].sum() for b in batches))})
    seconds = median_seconds(lambda: module.score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists]),
                             args.repeats, args.device)
    emit({"what": "score", **common, "s": seconds, "pairs_per_s": len(docs) / seconds})


if __name__ == "__main__":
    main()
