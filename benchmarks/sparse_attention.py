"""Peak memory and time of one forward+backward pass of a cross-encoder: sparse windows vs full attention.

Each setting runs in a fresh process on a small random BERT (sizes from the options) over a query segment of
32 tokens and a document filling the rest of 512 or 4,096 tokens, at the same tokens per batch (batch =
``--batch-tokens // length``), so activation memory is equal and differences come from attention alone.

Memory: on CPU the growth of the process's peak resident set (``ru_maxrss``) from just before the pass to just
after it (a fresh process per setting, so an earlier setting's peak cannot hide this one's); on CUDA
``torch.cuda.max_memory_allocated`` minus the memory allocated before the pass. Time: median of ``--repeats``
passes after one warm-up.

Attention settings: ``full-sdpa`` (the plain model, HF's default fused attention), ``full-eager`` (HF's
eager attention, which materialises the tokens x tokens score matrix, as classic BERT code does), and
``w=<n>`` (boltir's sparse pattern: query tokens see the query, document tokens the query and n tokens each side).
With attention dropout on (BERT's 0.1, the training default), PyTorch's fused CPU kernel does not apply and
``full-sdpa`` materialises the score matrix too; ``--attention-dropout 0`` shows the fused-kernel case.

    python benchmarks/sparse_attention.py --out benchmarks/results            # CPU
    python benchmarks/sparse_attention.py --device cuda --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python benchmarks/sparse_attention.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_report  # noqa: E402

QUERY_TOKENS = 32


def run_one(args: argparse.Namespace) -> dict:
    """Measure one (length, attention) setting in this process."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from boltir.models import CrossEncoderConfig, CrossEncoderModel
    from boltir.models.cross_encoder.model import PairBatch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    hf = BertConfig(vocab_size=1000, hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=args.heads,
                    intermediate_size=4 * args.hidden, max_position_embeddings=max(args.length, 512),
                    attention_probs_dropout_prob=args.attention_dropout,
                    attn_implementation="eager" if args.attention == "full-eager" else "sdpa")
    window = None if args.attention.startswith("full") else int(args.attention.split("=")[1])
    config = CrossEncoderConfig(attention="sparse" if window else "full", window=window, max_length=args.length,
                                query_length=QUERY_TOKENS - 2)
    tokenizer = BertTokenizerFast(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3})
    model = CrossEncoderModel(BertModel(hf), tokenizer, config).to(device).train()
    batch_size = max(args.batch_tokens // args.length, 1)
    ids = torch.randint(4, 1000, (batch_size, args.length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "token_type_ids": (torch.arange(args.length) >= QUERY_TOKENS).long().expand(batch_size, -1).contiguous(),
              "position_ids": torch.arange(args.length).expand(batch_size, -1).contiguous()}
    batch = PairBatch(inputs, query_tokens=QUERY_TOKENS).to(device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(batch).sum().backward()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # KiB on Linux
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"length": args.length, "attention": args.attention, "batch": batch_size, "peak_mb": round(peak_mb, 1),
            "seconds": round(statistics.median(times), 4)}


def table(rows: list[dict]) -> str:
    lines = ["| tokens | batch | attention | peak memory (MiB) | vs full-sdpa | vs full-eager | time fwd+bwd (s) |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        same = {r["attention"]: r for r in rows if r["length"] == row["length"]}
        ratios = [f"{row['peak_mb'] / same[key]['peak_mb']:.0%}" if key in same and same[key]["peak_mb"] > 0 else "–"
                  for key in ("full-sdpa", "full-eager")]
        lines.append(f"| {row['length']} | {row['batch']} | {row['attention']} | {row['peak_mb']:.0f} | {ratios[0]} | "
                     f"{ratios[1]} | {row['seconds']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--attentions", nargs="+", default=["w=4", "w=64", "full-sdpa", "full-eager"])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention-dropout", type=float, default=0.1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)  # worker mode: one setting
    parser.add_argument("--attention", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.length is not None:
        print(json.dumps(run_one(args)))
        return
    rows = []
    for length in args.lengths:
        for attention in args.attentions:
            command = [sys.executable, __file__, "--length", str(length), "--attention", attention]
            for option in ("device", "hidden", "layers", "heads", "batch_tokens", "repeats", "threads", "attention_dropout"):
                command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"{length} tokens, {attention} failed:\n{result.stderr[-3000:]}")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    keys = ("device", "hidden", "layers", "heads", "batch_tokens", "repeats", "threads", "attention_dropout")
    settings = {k: getattr(args, k) for k in keys}
    name = f"sparse_attention_{args.device}_dropout{args.attention_dropout:g}"
    markdown = f"Settings: {settings}, query segment {QUERY_TOKENS} tokens.\n\n{table(rows)}\n"
    write_report(args.out, name, {"settings": settings, "rows": rows}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
