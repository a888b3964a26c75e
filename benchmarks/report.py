"""The results page: tables of every saved row, with ratios, machine, versions and the commands that made them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# bf16 dense matrix rate measured on this workplace's H100/H200 (an 8192^3 product on random data; the
# datasheet says 989): the peak that indexing's achieved FLOP rate is compared with.
MATRIX_PEAK_TFLOPS = {"H100": 798.0, "H200": 788.0}


def token_flops(model_dir: str, texts: list[str], max_length: int = 256) -> float:
    """Useful FLOPs of one encoder pass over the texts (padding not counted): per layer and token,
    ``8 d^2 + 4 d d_ff`` for the projections and feed-forward, plus ``4 n d`` for attention over n tokens."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return float(sum(layers * (n * (8 * d * d + 4 * d * d_ff) + 4 * n * n * d) for n in lengths))


def _peak(gpu: str | None) -> float | None:
    return next((v for k, v in MATRIX_PEAK_TFLOPS.items() if gpu and k in gpu), None)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _indexing(saved: dict[str, Any]) -> str:
    meta = saved["meta"]
    rows = [r for r in saved["results"] if r.get("row") == "indexing" and "error" not in r]
    if not rows:
        return ""
    reference = {(r["precision"]): r["docs_per_s"] for r in rows if r["system"] == "st"}
    lir = {(r["precision"]): r["docs_per_s"] for r in rows if r["system"] == "lir-index"}
    one = {(r["precision"], r["docs"]): r["docs_per_s"] for r in rows if r["system"] == "boltir-index" and r.get("devices", 1) == 1}
    multi = any(r.get("devices", 1) > 1 for r in rows)
    peak = _peak(meta["machine"].get("gpu"))
    flops = meta.get("corpus_flops")
    body = []
    for r in rows:
        st, li = reference.get(r["precision"]), lir.get(r["precision"])
        on_gpu = meta["device"].startswith("cuda")
        achieved = flops / r["median_s"] / 1e12 if on_gpu and flops and r["docs"] == meta.get("corpus_docs") else None
        system = r["system"] + (f" ({r['devices']} devices, DDP)" if r.get("devices", 1) > 1 else "")
        body.append([
            system, r["precision"], str(r["batch_size"]), f"{r['docs']:,}", f"{r['median_s']:.3f}",
            f"{r['docs_per_s']:,.0f}", f"{r['peak_mem_mib']:,.0f}",
            f"{r['docs_per_s'] / st:.2f}x" if st else "–", f"{r['docs_per_s'] / li:.2f}x" if li else "–",
            (f"{achieved:.0f} ({achieved / peak:.1%})" if peak else f"{achieved:.1f}") if achieved else "–",
        ] + ([f"{r['docs_per_s'] / one[(r['precision'], r['docs'])]:.2f}x"
              if r.get("devices", 1) > 1 and (r["precision"], r["docs"]) in one else "–"] if multi else []))
    memory = "peak GPU memory allocated" if meta["device"].startswith("cuda") else "peak process RSS"
    return (
        f"**Indexing** ({rows[0]['docs']:,} SciFact documents, title + text, all-MiniLM-L6-v2, 256 tokens; median of "
        f"{len(rows[0]['times'])} runs at each system's fastest batch size; memory: {memory} (rank 0 under DDP); TFLOP/s: useful model "
        f"FLOPs {flops / 1e12:.1f} T / time" + (f", % of the {peak:.0f} TFLOP/s bf16 matrix peak" if peak else "") + ")\n\n"
        + _table(["system", "precision", "batch", "docs", "median s", "docs/s", "memory MiB", "vs ST", "vs lightning-ir",
                  "TFLOP/s"] + (["vs 1 device"] if multi else []), body)
    )


def _search(saved: dict[str, Any]) -> str:
    rows = [r for r in saved["results"] if r.get("row") == "search" and "error" not in r]
    if not rows:
        return ""
    body = [[
        r["index"], f"{r['docs']:,}", f"{r['raw_qps']:,.0f}", f"{r['boltir_qps']:,.0f}", f"{r['batch_overhead']:+.1%}",
        f"{r['raw_latency_ms']:.3f}", f"{r['boltir_latency_ms']:.3f}", f"{r['latency_overhead']:+.1%}", f"{r['build_s']:.1f}",
    ] for r in rows]
    engines = sorted({r["index"] if r["index"] in ("Seismic", "PLAID") else "Faiss" for r in rows})
    plaid = next((r for r in rows if r["index"] == "PLAID"), None)
    described = {"Faiss": "Faiss: synthetic 384-d clustered vectors, cosine",
                 "Seismic": "Seismic: synthetic Zipf-like term weights over 30,522 terms, boltir's default settings",
                 "PLAID": plaid and f"PLAID: synthetic clustered {plaid['token_dim']}-d float16 token vectors, "
                 f"{plaid['doc_tokens']} per document and {plaid['query_tokens']} per query, boltir's default settings, "
                 f"fast-plaid on {plaid['device']}"}
    return (
        f"**Search overhead over the raw engine** ({'; '.join(described[e] for e in engines)}; k={rows[0]['k']}; "
        f"throughput: {rows[0]['queries']} queries in one call; latency: one query per call; medians; "
        f"{rows[0]['threads']} threads)\n\n"
        + _table(["index", "docs", "raw q/s", "boltir q/s", "overhead", "raw ms/query", "boltir ms/query", "overhead",
                  "build s"], body)
    )


def _label(r: dict[str, Any]) -> str:
    """A row's system, with what set it apart from the others measured beside it."""
    notes = [f"{r['num_workers']} workers"] if r.get("row") == "training" and r.get("num_workers") is not None else []
    if r.get("cudnn_attention"):
        notes.append("cuDNN attention")
    if r.get("padded"):
        notes.append("padded rows")
    return r["system"] + (f" ({', '.join(notes)})" if notes else "")


def _training(saved: dict[str, Any]) -> str:
    rows = [r for r in saved["results"] if r.get("row") == "training" and "error" not in r]
    if not rows:
        return ""
    single = [r for r in rows if r.get("devices", 1) == 1]
    reference = {r["precision"]: r["samples_per_s"] for r in single if r["system"] == "st"}
    lir = {r["precision"]: r["samples_per_s"] for r in single if r["system"] == "lir"}
    one = {r["precision"]: r["samples_per_s"] for r in single if r["system"] == "boltir"}
    body = []
    for r in rows:
        devices = r.get("devices", 1)
        ratios = [reference.get(r["precision"]), lir.get(r["precision"]), one.get(r["precision"]) if devices > 1 else None]
        body.append([
            _label(r) + (f" ({devices} devices, DDP)" if devices > 1 else ""), r["precision"], str(r["batch_size"]),
            str(r["timed_steps"]), f"{r['seconds']:.2f}", f"{r['samples_per_s']:,.0f}", f"{r['peak_mem_mib']:,.0f}",
            *[f"{r['samples_per_s'] / x:.2f}x" if x else "–" for x in ratios],
        ])
    return (
        "**Training** (bi-encoder, in-batch negatives, InfoNCE t=0.05 / MultipleNegativesRankingLoss scale 20, "
        "SciFact train pairs, 256 tokens; samples = queries; batch = queries per device per step, negatives "
        "gathered across devices under DDP; timed after the warm-up steps)\n\n"
        + _table(["system", "precision", "batch", "steps", "s", "samples/s", "memory MiB", "vs ST", "vs lightning-ir",
                  "vs 1 device"], body)
    )


def _reranking(saved: dict[str, Any]) -> str:
    rows = [r for r in saved["results"] if r.get("row") == "reranking" and "error" not in r]
    if not rows:
        return ""
    reference = {r["precision"]: r["pairs_per_s"] for r in rows if r["system"] == "st"}
    lir = {r["precision"]: r["pairs_per_s"] for r in rows if r["system"] == "lir-re-rank"}
    first_pass = {r["precision"]: r["pairs"] / r["first_pass_s"] for r in rows if r["system"] == "st" and "first_pass_s" in r}
    body = []
    for r in rows:
        st, li, st_first = reference.get(r["precision"]), lir.get(r["precision"]), first_pass.get(r["precision"])
        cold = r["pairs"] / r["first_pass_s"] if "first_pass_s" in r else None
        body.append([
            _label(r), r["precision"], str(r["batch_size"]), f"{r['pairs']:,}", f"{r['median_s']:.3f}",
            f"{r['pairs_per_s']:,.0f}", f"{r['peak_mem_mib']:,.0f}",
            f"{r['pairs_per_s'] / st:.2f}x" if st else "–", f"{r['pairs_per_s'] / li:.2f}x" if li else "–",
            f"{r['first_pass_s']:.2f} s, {cold:,.0f}/s" + (f", {cold / st_first:.2f}x" if st_first else "") if cold else "–",
        ])
    first = rows[0]
    return (
        f"**Re-ranking** ({first['pairs']:,} (query, document) pairs: {first['queries']} SciFact test queries x BM25 "
        f"top-{first.get('depth', 100)}, cross-encoder `{first['model']}`, pairs cut at "
        f"{first['max_length']} tokens; median of {len(first['times'])} runs at each system's fastest batch size "
        "(pairs per forward pass); memory: peak GPU memory allocated, or peak process RSS on a CPU; first pass: "
        "the very first pass over all pairs in a fresh process, as one re-ranking run waits for it, vs ST's)\n\n"
        + _table(["system", "precision", "batch", "pairs", "median s", "pairs/s", "memory MiB", "vs ST",
                  "vs lightning-ir", "first pass"], body)
    )


def _errors(saved: dict[str, Any]) -> str:
    failed = [r for r in saved["results"] if "error" in r]
    return "\n".join(f"- {r.get('row', r.get('command', '?'))}: {r['error']}" for r in failed)


def _parity(parity: dict[str, Any]) -> str:
    rows = [[r["system"], r["precision"], f"{r['ndcg@10']:.4f}", f"{r['ndcg@10'] - parity['reference_ndcg@10']:+.4f}",
             f"{r['encode_s']:.2f}"] for r in parity["runs"]]
    return (
        f"## Parity: SciFact test nDCG@10, all-MiniLM-L6-v2 ({parity['meta']['machine'].get('gpu') or parity['meta']['machine']['cpu']})\n\n"
        f"Reference: sentence-transformers' own `encode` (fp32) + exact cosine search over the same texts "
        f"(title + \" \" + text), 300 test queries. boltir: mean pooling, cosine, doc_length 256, Faiss flat index.\n\n"
        + _table(["system", "precision", "nDCG@10", "vs reference", "encode s"], rows)
        + f"\n\nCommand: `{parity['meta']['command']}`\n"
    )


def render(saved: list[dict[str, Any]], parity: dict[str, Any] | None, png: Path | None) -> str:
    parts = ["# Benchmarks (boltir vs sentence-transformers vs lightning-ir)\n",
             "Written by `python -m benchmarks.run` (or re-rendered by `python -m benchmarks.report`); every table "
             "comes from the JSON files in `benchmarks/results/`. Ratios are within one run on one machine.\n"]
    if parity:
        parts.append(_parity(parity))
    for one in saved:
        meta = one["meta"]
        described = ", ".join(f"{k} {v}" for k, v in meta["machine"].items())
        parts.append(f"## {meta['device'].upper()} — {described}\n")
        parts.append(f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}. "
                     f"Started {meta['started']}, {meta['minutes']} min"
                     + (", random weights of MiniLM's shape" if meta.get("random_weights") else "") + ".\n")
        parts.append(f"Command: `{meta['command']}`\n")
        for section in (_indexing(one), _reranking(one), _search(one), _training(one)):
            if section:
                parts.append(section + "\n")
        errors = _errors(one)
        if errors:
            parts.append("Rows that did not run:\n\n" + errors + "\n")
    if png is not None:
        parts.append(f"## Scaling\n\n![indexing time and search latency as the collection grows]({png.name})\n")
    return "\n".join(parts)


def write_page(out: Path, md: Path) -> Path:
    """Render every saved result in ``out`` into ``md``, with the scaling plot beside it."""
    from .scaling import plot

    saved = [json.loads(p.read_text()) for p in sorted(out.glob("results-*.json"))]
    png = plot([r for s in saved for r in s["results"]], md.parent / "scaling.png")
    parity = out / "parity.json"
    md.write_text(render(saved, json.loads(parity.read_text()) if parity.is_file() else None, png))
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description="Re-render the results page from saved results.")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--md", default="benchmarks/results/RESULTS-bench.md")
    args = parser.parse_args()
    print(write_page(Path(args.out), Path(args.md)).read_text())


if __name__ == "__main__":
    main()
