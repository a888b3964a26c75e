"""Memory and time of encoding long documents: 2,048 tokens as one sequence vs 4 x 512 segments (MaxP, SeDR).

The encoder has all-MiniLM-L6-v2's shape (6 layers, 384 hidden, 12 heads) with 2,048 positions and random
weights: speed and memory do not depend on the weights. Inputs are random token ids (tokenisation is not
measured). Each variant runs in its own process so that peak memory is its own (CPU: peak resident memory
above the process's size before encoding; GPU: peak allocated memory above the model and inputs).

    python benchmarks/sedr_encoding.py --device cpu --docs 2 --repeats 3          # CPU (run it niced)
    python benchmarks/sedr_encoding.py --device cuda --docs 64 --repeats 10       # GPU, bf16
    python benchmarks/sedr_encoding.py --tiny                                     # seconds; what the test runs
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (python benchmarks/sedr_encoding.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_report  # noqa: E402

VARIANTS = {  # name: (segments per document, tokens per segment, aggregation)
    "long": (1, 2048, None),
    "maxp": (4, 512, "maxp"),
    "sedr": (4, 512, "sedr"),
}
TINY = {"long": (1, 64, None), "maxp": (4, 16, "maxp"), "sedr": (4, 16, "sedr")}


def build_model(aggregation: str | None, segments: int, length: int, tiny: bool):
    """A MiniLM-shaped BERT with random weights inside boltir's bi-encoder, configured for the variant."""
    import torch
    from transformers import BertConfig, BertTokenizerFast

    from boltir.models import BiEncoderConfig, BiEncoderModel

    torch.manual_seed(0)
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64) if tiny else dict(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    backbone_config = BertConfig(vocab_size=30522, max_position_embeddings=2048, **shape)
    tokenizer = BertTokenizerFast(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3})
    options = None if aggregation is None else {"aggregation": aggregation, "max_segments": segments}
    config = BiEncoderConfig(doc_length=length, segments=options)
    return BiEncoderModel.from_backbone_config(backbone_config, tokenizer, config)


def make_inputs(variant: str, docs: int, device: str, tiny: bool) -> dict[str, Any]:
    """Random token ids for ``docs`` documents in the variant's layout (every document fills every segment)."""
    import torch

    segments, length, aggregation = (TINY if tiny else VARIANTS)[variant]
    generator = torch.Generator().manual_seed(0)
    encoding = {
        "input_ids": torch.randint(1000, 30000, (docs * segments, length), generator=generator).to(device),
        "attention_mask": torch.ones(docs * segments, length, dtype=torch.long, device=device),
    }
    if aggregation is not None:
        encoding["segment_mask"] = torch.ones(docs, segments, dtype=torch.bool, device=device)
    return encoding


def encode_once(model: Any, encoding: dict[str, Any], train: bool, device: str) -> None:
    """One batch: forward only (inference), or forward + backward (training); bf16 autocast on GPU."""
    import torch

    cuda = device.startswith("cuda")
    with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
        if train:
            out = model.encode_docs(encoding)
            (out.vectors if hasattr(out, "vectors") else out).float().sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model.encode_docs(encoding)
    if cuda:
        torch.cuda.synchronize()


def measure(variants: list[str], device: str, docs: int, repeats: int, train: bool, tiny: bool) -> list[dict[str, Any]]:
    """Median seconds of encoding ``docs`` documents per variant; runs interleave so machine load hits all alike."""
    import torch

    cases = {}
    for variant in variants:
        segments, length, aggregation = (TINY if tiny else VARIANTS)[variant]
        model = build_model(aggregation, segments, length, tiny).to(device).train(train)
        cases[variant] = (model, make_inputs(variant, docs, device, tiny))
    cuda = device.startswith("cuda")
    peaks: dict[str, float | None] = {}
    for variant, (model, encoding) in cases.items():
        for _ in range(2):  # warm-up (kernels, allocator, thread pools)
            encode_once(model, encoding, train, device)
        if cuda:  # what one encoding adds above the models and inputs already resident
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            encode_once(model, encoding, train, device)
            peaks[variant] = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:  # CPU peak memory needs a fresh process: see cpu_peak_in_fresh_process
            peaks[variant] = None
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for variant, (model, encoding) in cases.items():
            start = time.perf_counter()
            encode_once(model, encoding, train, device)
            times[variant].append(time.perf_counter() - start)
    rows = []
    for variant in variants:
        segments, length, _ = (TINY if tiny else VARIANTS)[variant]
        median = statistics.median(times[variant])
        rows.append({
            "variant": variant, "mode": "train (fwd+bwd)" if train else "encode", "device": device, "docs": docs,
            "segments": segments, "tokens_per_segment": length, "median_s": median, "min_s": min(times[variant]),
            "times": times[variant], "docs_per_s": docs / median, "peak_mib": peaks[variant],
        })
    return rows


def _resident_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, from /proc (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def measure_cpu_peak(variant: str, docs: int, train: bool, tiny: bool) -> float:
    """Peak resident memory of one encoding above the process's size before it (a fresh process, Linux)."""
    segments, length, aggregation = (TINY if tiny else VARIANTS)[variant]
    model = build_model(aggregation, segments, length, tiny).train(train)
    encoding = make_inputs(variant, docs, "cpu", tiny)
    before = _resident_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak (VmHWM) to the current size: import-time peaks no longer count
    encode_once(model, encoding, train, "cpu")
    return _resident_mib("VmHWM") - before


def cpu_peak_in_fresh_process(variant: str, docs: int, train: bool, tiny: bool) -> float:
    """CPU peak memory needs a fresh process, measured from just before its first encoding."""
    command = [sys.executable, __file__, "--peak-child", "--variant", variant, "--docs", str(docs)]
    command += ["--train"] * train + ["--tiny"] * tiny
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measuring the peak memory of {variant} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| mode | layout | docs | median s (min) | docs/s | peak memory MiB | vs long: time | vs long: memory |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = next((r for r in rows if r["variant"] == "long" and r["mode"] == row["mode"]), None)
        layout = f"{row['variant']} ({row['segments']} x {row['tokens_per_segment']})"
        ratios = "- | - |" if base is None else (
            f"{row['median_s'] / base['median_s']:.2f}x | {row['peak_mib'] / max(base['peak_mib'], 1e-9):.2f}x |")
        lines.append(
            f"| {row['mode']} | {layout} | {row['docs']} | {row['median_s']:.3f} ({row['min_s']:.3f}) | {row['docs_per_s']:.2f} | "
            f"{row['peak_mib']:.0f} | {ratios}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=int, default=2, help="documents per encoded batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="encode,train", help="encode (inference) and/or train (forward + backward)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model on short inputs: checks the script runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="long, maxp and/or sedr")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peak-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_child:
        print(measure_cpu_peak(args.variant, args.docs, args.train, args.tiny))
        return
    rows = []
    for mode in args.modes.split(","):
        for row in measure(args.variants.split(","), args.device, args.docs, args.repeats, mode == "train", args.tiny):
            if row["peak_mib"] is None:
                row["peak_mib"] = cpu_peak_in_fresh_process(row["variant"], args.docs, mode == "train", args.tiny)
            print(json.dumps(row), flush=True)
            rows.append(row)
    import torch

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    meta = {"device": args.device, "device_name": device_name, "torch": torch.__version__, "threads": torch.get_num_threads()}
    stem = f"sedr_encoding_{args.device.split(':')[0]}_{args.modes.replace(',', '-')}" + ("_tiny" if args.tiny else "")
    markdown = f"{meta}\n\n{table(rows)}\n"
    write_report(args.out, stem, {"meta": meta, "rows": rows}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
