"""Query encoding speed of LightRetriever: EmbeddingBag lookup (dense) and token counts (sparse) vs a full LLM forward.

Every variant is timed through the same public call, ``encode_queries`` of its module (tokenisation, batching and
device transfer included), on the SciFact test queries, at the batch sizes asked for. The LLM forward is the
symmetric baseline: ``query_prefix + query + EOS`` through the whole decoder, last-token pooling.

    python benchmarks/light_retriever.py --device cpu --random-cache --lookup-threads 1   # CPU (2 shared cores here)
    python benchmarks/light_retriever.py --device cuda --dtype bfloat16         # GPU: builds the real cache first
    python benchmarks/light_retriever.py --device cuda --dtype bfloat16 --random-weights --model <config+tokenizer dir>

``--random-cache`` fills the EmbeddingBag with random vectors of the model's shape instead of running the LLM over
the whole vocabulary (a lookup costs the same whatever the values): building the real cache takes under a minute
on a GPU but about an hour on two shared CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file (python benchmarks/light_retriever.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_report  # noqa: E402
from boltir import LightRetrieverModule, QueryDataset  # noqa: E402
from boltir.models import LightRetrieverModel, resolve_model_dir  # noqa: E402
from boltir.models.light_retriever.model import CACHE_NAME  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_encoder(module: LightRetrieverModule, queries: list[str], batch_size: int, repeats: int, device: str) -> dict:
    """Median seconds per batch of ``batch_size`` queries over ``repeats`` batches (after one warm-up batch)."""
    batches = [queries[(i * batch_size) % len(queries):][:batch_size] for i in range(repeats + 1)]
    batches = [b if len(b) == batch_size else (b + queries)[:batch_size] for b in batches]
    seconds = []
    for i, batch in enumerate(batches):
        _sync(device)
        start = time.perf_counter()
        vectors = module.encode_queries(batch, batch_size=batch_size)
        _sync(device)
        if i:  # the first batch warms up kernels and allocators
            seconds.append(time.perf_counter() - start)
    assert vectors.shape[0] == batch_size
    median = statistics.median(seconds)
    return {"batch_size": batch_size, "repeats": repeats, "latency_ms": 1000 * median, "queries_per_s": batch_size / median}


def light_module(directory: Path, random_cache: bool, device: str, batch_size: int) -> tuple[LightRetrieverModule, float | None]:
    """The query-only asymmetric dense encoder, and the seconds it took to build the real cache (None if not built here)."""
    if random_cache:
        from transformers import AutoConfig

        from boltir.models.model import load_tokenizer

        config = LightRetrieverModel.config_class()
        tokenizer = load_tokenizer(directory)
        backbone_config = AutoConfig.from_pretrained(directory)
        weights = torch.randn(len(tokenizer), backbone_config.hidden_size)
        return LightRetrieverModule(model=LightRetrieverModel(None, tokenizer, config, backbone_config, token_cache=weights)), None
    seconds = None
    if not (directory / CACHE_NAME).is_file():
        gpu = device.startswith("cuda")
        start = time.perf_counter()
        with torch.autocast("cuda" if gpu else "cpu", dtype=torch.bfloat16, enabled=gpu):
            LightRetrieverModule(directory).to(device).cache_embeddings(batch_size=batch_size)
        seconds = time.perf_counter() - start
        print(f"built the query token cache in {seconds:.1f} s", flush=True)
    return LightRetrieverModule(directory, query_only=True), seconds


def random_weights_copy(directory: Path) -> Path:
    """A temporary model directory of the same shape and tokenizer with random weights (speed does not need real ones)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target = Path(tempfile.mkdtemp(prefix="light-random-"))
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(directory)).save_pretrained(target)
    AutoTokenizer.from_pretrained(directory).save_pretrained(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct", help="decoder LLM (name or directory)")
    parser.add_argument("--data", default="../shared/data/scifact", help="BEIR folder whose test queries are encoded")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="LLM weights dtype")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--repeats", type=int, default=None, help="timed batches per size (default: 50 on GPU, 5 on CPU)")
    parser.add_argument("--llm-repeats", type=int, default=None, help="timed LLM batches per size (default: as --repeats)")
    parser.add_argument("--lookup-threads", type=int, default=None, help="CPU threads for the lookup encoders (default: as the LLM)")
    parser.add_argument("--random-weights", action="store_true", help="random LLM weights of --model's shape (a config + tokenizer folder suffices)")
    parser.add_argument("--random-cache", action="store_true", help="random EmbeddingBag of the right shape (see above)")
    parser.add_argument("--cache-batch-size", type=int, default=2048, help="vocabulary tokens per LLM batch when caching")
    parser.add_argument("--out", default="benchmarks/results", help="folder for light_retriever.json / .md")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    repeats = args.repeats or (50 if gpu else 5)
    llm_repeats = args.llm_repeats or repeats
    directory = resolve_model_dir(args.model)
    if args.random_weights:
        directory = random_weights_copy(directory)
    queries = [q.text for q in QueryDataset(args.data, split="test")]

    dtype = getattr(torch, args.dtype)
    llm = LightRetrieverModule(directory, config={"symmetric": True}).to(args.device, dtype).eval()
    light, cache_seconds = light_module(directory, args.random_cache, args.device, args.cache_batch_size)
    light = light.to(args.device).eval()
    sparse = LightRetrieverModule(directory, config={"representation": "sparse"}, query_only=True).to(args.device).eval()

    rows = []
    llm_threads = torch.get_num_threads()
    lookup_threads = args.lookup_threads or llm_threads
    for batch_size in args.batch_sizes:
        timed = {"llm_forward": time_encoder(llm, queries, batch_size, llm_repeats, args.device)}
        torch.set_num_threads(lookup_threads)  # a lookup gains nothing from threads; on a busy CPU they cost
        timed["embedding_bag"] = time_encoder(light, queries, batch_size, repeats, args.device)
        timed["token_counts"] = time_encoder(sparse, queries, batch_size, repeats, args.device)
        torch.set_num_threads(llm_threads)
        for name, result in timed.items():
            speedup = timed["llm_forward"]["latency_ms"] / result["latency_ms"]
            rows.append({"encoder": name, **result, "speedup_vs_llm": speedup})
            print(json.dumps(rows[-1]), flush=True)

    device_name = torch.cuda.get_device_name() if gpu else f"CPU ({llm_threads} threads for the LLM, {lookup_threads} for lookups)"
    report = {
        "model": args.model,
        "device": device_name,
        "dtype": args.dtype,
        "queries": f"{args.data} test ({len(queries)})",
        "random_weights": args.random_weights,
        "random_cache": args.random_cache,
        "cache_build_seconds": cache_seconds,
        "results": rows,
    }
    suffix = "cuda" if gpu else "cpu"
    lines = [
        f"Query encoding, {args.model} ({args.dtype}) on {device_name}"
        + (" — EmbeddingBag filled with random vectors of the real shape" if args.random_cache else "")
        + (f" — query token cache ({len(light.model.tokenizer):,} tokens) built in {cache_seconds:.1f} s" if cache_seconds else ""),
        "",
        "| encoder | batch | latency (ms/batch) | queries/s | speed-up vs LLM |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['encoder']} | {r['batch_size']} | {r['latency_ms']:.3f} | {r['queries_per_s']:,.0f} | {r['speedup_vs_llm']:,.0f}x |"
        for r in rows
    ]
    write_report(args.out, f"light_retriever_{suffix}", report, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
