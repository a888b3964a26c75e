"""LightRetriever on SciFact: LoRA fine-tuning of a decoder LLM, then test nDCG@10 and end-to-end queries/s of
symmetric dense (the LLM encodes queries too), asymmetric dense (EmbeddingBag queries), sparse (token-count
queries) and the hybrid of the last two (min-max fused run).

Each variant is fine-tuned on the SciFact train queries (positive documents, in-batch negatives, InfoNCE) through
``Trainer.fit``, saved (LoRA merged), documents are encoded by its LLM, and the 300 test queries are searched:
dense through the exact Faiss index, sparse through the exact sparse engine (``SparseExactIndexConfig``). End-to-end time = query encoding + search (+ fusion),
with the query-only model (no LLM loaded) for the asymmetric variants.

    python benchmarks/light_retriever_scifact.py --device cuda --data .carry/scifact --model <SmolLM2 dir>   # H100
    python benchmarks/light_retriever_scifact.py --device cpu --tiny --model <tiny LLM dir> --data <BEIR dir>  # test
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

if __package__ in (None, ""):  # run as a file (python benchmarks/light_retriever_scifact.py): benchmarks.common from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import trainer_options, write_report  # noqa: E402
from boltir import (  # noqa: E402
    DataModule,
    DocDataset,
    FaissIndexConfig,
    LightRetrieverModule,
    QueryDataset,
    Run,
    SparseExactIndexConfig,
    Trainer,
    TupleDataset,
    evaluate,
    fuse_runs,
    open_searcher,
)
from boltir.data import read_qrels  # noqa: E402

VARIANTS = {
    "symmetric dense": {"symmetric": True},
    "asymmetric dense": {},
    "sparse": {"representation": "sparse"},
}
MEASURES = ["nDCG@10", "R@100"]


class _Module(LightRetrieverModule):
    """AdamW over the trainable (LoRA) weights at the benchmark's learning rate."""

    lr = 1e-4

    def configure_optimizers(self):  # type: ignore[override]
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def train_tuples(data: Path, work: Path, max_queries: int | None) -> TupleDataset:
    """SciFact train qrels as tuples (query, positives); negatives come from the batch."""
    qrels = read_qrels(data / "qrels" / "train.tsv")
    queries = {q.query_id: q.text for q in QueryDataset(data, split="train")}
    path = work / "train-tuples.jsonl"
    with open(path, "w") as handle:
        for qid in list(qrels)[:max_queries]:
            positives = [d for d, r in qrels[qid].items() if r > 0]
            if positives and qid in queries:
                handle.write(json.dumps({"query_id": qid, "query": queries[qid], "pos": positives}) + "\n")
    return TupleDataset(path, list_size=1, corpus=str(data))


def trainer(args: argparse.Namespace, **kwargs) -> Trainer:
    return Trainer(**trainer_options(args.device, args.precision, **kwargs))


def fine_tune(name: str, args: argparse.Namespace, tuples: TupleDataset, work: Path) -> tuple[Path, float]:
    """LoRA fine-tuning of one variant; returns the saved model directory and the training seconds."""
    config = {
        **VARIANTS[name],
        "lora_r": args.lora_r,
        "query_length": args.query_length,
        "doc_length": args.doc_length,
        "doc_top_k": args.doc_top_k,
    }
    temperature = args.sparse_temperature if config.get("representation") == "sparse" else args.dense_temperature
    torch.manual_seed(args.seed)  # LoRA's initialisation and the batches
    module = _Module(args.model, config=config, loss_functions=None, in_batch_loss={"name": "infonce", "temperature": temperature})
    module.lr = args.lr
    start = time.perf_counter()
    trainer(args, max_steps=args.steps, gradient_clip_val=1.0).fit(module, datamodule=DataModule(train_dataset=tuples, batch_size=args.batch_size))
    seconds = time.perf_counter() - start
    directory = work / name.replace(" ", "-")
    module.save_pretrained(directory)
    return directory, seconds


def _autocast(args: argparse.Namespace, enabled: bool = True) -> torch.autocast:
    """bf16 autocast for LLM forwards when the run's precision is bf16-mixed."""
    return torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=enabled and args.precision == "bf16-mixed")


def encode_corpus(directory: Path, docs: list[tuple[str, str]], args: argparse.Namespace) -> tuple[LightRetrieverModule, torch.Tensor, float]:
    module = LightRetrieverModule(directory).to(args.device).eval()
    start = time.perf_counter()
    with _autocast(args):
        vectors = module.encode_docs([t for _, t in docs], batch_size=args.encode_batch_size).float()
    return module, vectors, time.perf_counter() - start


def evaluate_variant(name: str, directory: Path, docs: list[tuple[str, str]], queries: QueryDataset, args: argparse.Namespace, work: Path) -> dict:
    """Encode the corpus with the LLM, then time query encoding + search for the test queries."""
    full, doc_vectors, encode_seconds = encode_corpus(directory, docs, args)
    sparse = full.model.representation == "sparse"
    symmetric = full.model.config.symmetric
    cache_seconds = 0.0
    if symmetric:
        query_module = full
    else:
        if not sparse:
            start = time.perf_counter()
            bf16 = args.precision.startswith("bf16") and args.device.startswith("cuda")
            with torch.autocast("cuda" if bf16 else "cpu", dtype=torch.bfloat16, enabled=bf16):
                full.to(args.device).cache_embeddings(batch_size=args.cache_batch_size)
            cache_seconds = time.perf_counter() - start
        query_module = LightRetrieverModule(directory, query_only=True).to(args.device).eval()
        del full
    engine = SparseExactIndexConfig() if sparse else FaissIndexConfig()
    indexer = engine.indexer(work / f"index-{directory.name}", query_module.model)
    indexer.add([d for d, _ in docs], doc_vectors.cpu())
    searcher = open_searcher(indexer.finish())
    searcher.check_model(query_module.model)
    texts = [q.text for q in queries]
    run, timings = Run(name=name), []
    for _ in range(4):  # one warm-up pass, then the median of three timed passes
        start = time.perf_counter()
        with _autocast(args, symmetric):
            vectors = query_module.encode_queries(texts, batch_size=args.search_batch_size).float()
        scores, ids = searcher.search_arrays(vectors, args.k)
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings[1:])
    for query, row_scores, row_ids in zip(queries, scores, ids):
        run.add(query.query_id, row_ids, row_scores[: len(row_ids)].tolist())
    return {"run": run, "search_seconds": seconds, "doc_encode_seconds": encode_seconds, "cache_seconds": cache_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--data", default="../shared/data/scifact", help="BEIR folder with qrels/train.tsv and qrels/test.tsv")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, help="Lightning precision (default: bf16-mixed on cuda, else 32-true)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per variant")
    parser.add_argument("--batch-size", type=int, default=32, help="training queries per step (in-batch negatives)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--dense-temperature", type=float, default=0.02)
    parser.add_argument("--sparse-temperature", type=float, default=1.0)
    parser.add_argument("--query-length", type=int, default=64)
    parser.add_argument("--doc-length", type=int, default=256)
    parser.add_argument("--doc-top-k", type=int, default=256, help="terms kept per sparse document vector")
    parser.add_argument("--hybrid-weights", type=float, nargs=2, default=[1.0, 1.0], help="dense, sparse (min-max scaled)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--encode-batch-size", type=int, default=64)
    parser.add_argument("--search-batch-size", type=int, default=300)
    parser.add_argument("--cache-batch-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="variants to train and search (the hybrid needs asymmetric dense and sparse)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: 40 train queries, 200 documents, 10 test queries")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    args.precision = args.precision or ("bf16-mixed" if args.device.startswith("cuda") else "32-true")
    data = Path(args.data)
    test = QueryDataset(data, split="test")
    docs = [(d.doc_id, d.text) for d in DocDataset(data)]
    queries = list(test)
    if args.tiny:
        queries = queries[:10]
        wanted = {d for q in queries for d in test.qrels.get(q.query_id, {})}
        docs = [d for d in docs if d[0] in wanted] + [d for d in docs if d[0] not in wanted][: max(0, 200 - len(wanted))]
    qrels = {q.query_id: test.qrels[q.query_id] for q in queries}

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="light-scifact-") as tmp:
        work = Path(tmp)
        tuples = train_tuples(data, work, 40 if args.tiny else None)
        for name in args.variants:
            directory, train_seconds = fine_tune(name, args, tuples, work)
            outcome = evaluate_variant(name, directory, docs, queries, args, work)
            results[name] = {**outcome, "train_seconds": train_seconds}
            print(name, {k: v for k, v in results[name].items() if k != "run"}, flush=True)
    if "asymmetric dense" in results and "sparse" in results:
        start = time.perf_counter()
        hybrid = fuse_runs([results["asymmetric dense"]["run"], results["sparse"]["run"]], args.hybrid_weights, name="hybrid")
        fusion_seconds = time.perf_counter() - start
        results["hybrid"] = {
            "run": hybrid,
            "search_seconds": results["asymmetric dense"]["search_seconds"] + results["sparse"]["search_seconds"] + fusion_seconds,
        }
    rows = []
    for name, result in results.items():
        metrics = evaluate(result["run"], qrels, MEASURES)
        rows.append({"variant": name, **metrics, "queries_per_s": len(queries) / result["search_seconds"],
                     **{k: v for k, v in result.items() if k not in ("run",)}})
    report(rows, args, len(queries), len(docs))


def report(rows: list[dict], args: argparse.Namespace, num_queries: int, num_docs: int) -> None:
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    lines = [
        f"SciFact test ({num_queries} queries, {num_docs} documents), {args.model} + LoRA r={args.lora_r}, "
        f"{args.steps} steps × {args.batch_size} queries, on {device}",
        "",
        "| variant | nDCG@10 | R@100 | queries/s (encode + search) | train s | doc encode s | query cache s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | {r['queries_per_s']:,.0f} | "
            f"{r.get('train_seconds', 0):.0f} | {r.get('doc_encode_seconds', 0):.1f} | {r.get('cache_seconds', 0):.1f} |"
        )
    write_report(args.out, "light_retriever_scifact", {"device": device, "settings": settings, "results": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
