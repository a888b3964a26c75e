"""Where encoding time goes: tokenisation variants on the host, the model's forward on the device, and the whole.

Prints one JSON line per measurement (median of ``--repeats``), to decide which lever to pull next.
Run: ``python -m benchmarks.profile_encode --model DIR --data SCIFACT_DIR --device cuda``
"""

from __future__ import annotations

import argparse

from .common import dtype_of, emit, median_seconds, scifact_corpus, scifact_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-sizes", default="256,1024")
    parser.add_argument("--precisions", default="bf16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenize-only", action="store_true")
    args = parser.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    _, texts = scifact_texts(scifact_corpus(args.data, args.limit))
    texts = sorted(texts, key=len, reverse=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    for size in (int(b) for b in args.batch_sizes.split(",")):
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]

        def tok(**kwargs):
            return [tokenizer(b, padding=True, truncation=True, max_length=256, return_tensors="pt", **kwargs) for b in batches]

        emit({"what": "tokenize padded pt", "batch": size, "s": median_seconds(tok, args.repeats, "cpu")})
        emit({"what": "tokenize padded pt, no token_type_ids", "batch": size,
              "s": median_seconds(lambda: tok(return_token_type_ids=False), args.repeats, "cpu")})
        emit({"what": "tokenize rust only", "batch": size,
              "s": median_seconds(lambda: [tokenizer._tokenizer.encode_batch(b) for b in batches], args.repeats,
                                  "cpu")})
        from boltir.models.layers import tokenize_texts

        emit({"what": "boltir tokenize_texts", "batch": size,
              "s": median_seconds(lambda: [tokenize_texts(tokenizer, b, 256) for b in batches], args.repeats, "cpu")})
        if args.tokenize_only:
            continue
        encodings = [{k: v.to(args.device) for k, v in e.items()} for e in tok(return_token_type_ids=False)]
        for precision in args.precisions.split(","):
            for attention in ("sdpa", "eager"):
                model = AutoModel.from_pretrained(args.model, dtype=dtype_of(precision), attn_implementation=attention)
                model = model.to(args.device).eval()

                def forward():
                    with torch.inference_mode():
                        for e in encodings:
                            model(**e)

                forward()
                emit({"what": f"forward {attention}", "precision": precision, "batch": size,
                      "s": median_seconds(forward, args.repeats, args.device),
                      "padded_tokens": sum(e["input_ids"].numel() for e in encodings),
                      "real_tokens": int(sum(e["attention_mask"].sum() for e in encodings))})
                del model
    if args.device.startswith("cuda"):
        emit({"what": "gpu", "name": torch.cuda.get_device_name()})


if __name__ == "__main__":
    main()
