"""Where re-ranking time goes: tokenising the pairs on the host vs the cross-encoder's forward on the device.

Prints one JSON line per measurement (median of ``--repeats``): ``tokenize`` (every batch's pairs, one thread,
texts cached across batches and pairs grouped by token count as ``score`` does), ``forward`` (the model on the
already tokenised batches) and ``score`` (the whole ``CrossEncoderModule.score``: on a GPU the next window of
batches is tokenised while this one is scored).
If ``score`` is close to ``forward``, the GPU is the bound; if close to ``tokenize``, the host is.
Run: ``python -m benchmarks.profile_rerank --system boltir-score --device cuda --precision bf16 --model DIR
--data SCIFACT_DIR --run BM25.run --batch-sizes 256``
"""

from __future__ import annotations

import argparse
from typing import Any

from boltir.modules import cross_encoder

from .common import allow_cudnn_attention, dtype_of, emit, median_seconds
from .reranking import _module, add_arguments, rerank_lists


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, ["boltir-score"])
    parser.add_argument("--no-sort-window", dest="sort_window", action="store_false",
                        help="batches tokenised and padded one by one in character order, for every measurement "
                        "(boltir before the sort window)")
    parser.add_argument("--tokens-only", action="store_true", help="only tokenise and count padding (no model runs)")
    args = parser.parse_args()
    if args.cudnn_attention:
        allow_cudnn_attention()
    size = int(args.batch_sizes.split(",")[0])
    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    queries = [q for _, q, _, ds in lists for _ in ds]
    docs = [d for _, _, _, ds in lists for d in ds]
    module = _module(args, size).to(args.device, dtype_of(args.precision)).eval()
    if not args.sort_window:
        cross_encoder.SORT_WINDOW = 1
    _, parts = module._pair_windows(queries, docs)  # as CrossEncoderModule.score groups pairs
    left = module.model.tokenizer.padding_side == "left"
    pack = module.packs_sequences()  # as score packs them

    def tokenize() -> list:
        cache: dict[str, Any] = {}
        pairs = [([queries[i] for i in p], [docs[i] for i in p]) for p in parts]
        batches = [module.model.tokenize_pairs(q, d, cache=cache) for q, d in pairs]
        pieces = [piece for batch in batches for _, piece in batch.by_length(size, left)]
        return [module.model.pack(piece.inputs) for piece in pieces] if pack else pieces

    batches = [b.to(args.device) for b in tokenize()]
    common = {"pairs": len(docs), "batch": size, "precision": args.precision, "device": args.device,
              "sort_window": cross_encoder.SORT_WINDOW, "cudnn_attention": args.cudnn_attention,
              "packed": pack}
    tokens = [b.inputs["input_ids"].numel() for b in batches]
    real = tokens if pack else [int(b.inputs["attention_mask"].sum()) for b in batches]
    emit({"what": "tokenize", **common, "s": median_seconds(tokenize, args.repeats, "cpu"),
          "padded_tokens": sum(tokens), "real_tokens": sum(real)})
    if args.tokens_only:
        return

    def forward() -> None:
        with torch.inference_mode():
            for batch in batches:
                module.model(batch)

    forward()
    emit({"what": "forward", **common, "s": median_seconds(forward, args.repeats, args.device)})
    seconds = median_seconds(lambda: module.score([q for _, q, _, _ in lists], [ds for _, _, _, ds in lists]),
                             args.repeats, args.device)
    emit({"what": "score", **common, "s": seconds, "pairs_per_s": len(docs) / seconds})


if __name__ == "__main__":
    main()
