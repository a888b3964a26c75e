"""Parity: boltir's nDCG@10 on SciFact test with all-MiniLM-L6-v2 against sentence-transformers' own numbers.

Reference: ``SentenceTransformer.encode`` (fp32) of queries and documents (``title + " " + text``), exact cosine
search (all 5,183 documents scored), evaluated with ir-measures. boltir: ``Trainer.index`` into a Faiss flat
index, then ``Trainer.search`` over the 300 test queries (mean pooling, cosine, doc_length 256 — the model's
sentence-transformers settings), in fp32 and in each faster precision asked for. Every figure must stay within
``--tolerance`` (0.002) of the reference.

Run: ``python -m benchmarks.parity_scifact --model MINILM_DIR --data SCIFACT_DIR --device cuda --precisions fp32,bf16``
(a float16 copy of the weights is upcast to float32 first, so both systems load the same fp32 weights).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import lightning_precision, machine, minilm_config, trainer_options, versions, write_report


def fp32_copy(model_dir: str) -> Path:
    """The model with float32 weights (and every sentence-transformers file beside them)."""
    import torch
    from transformers import AutoModel

    source, target = Path(model_dir), Path(tempfile.mkdtemp(prefix="parity-model-"))
    for item in source.iterdir():
        if item.suffix in (".safetensors", ".bin") or item.name.startswith("."):
            continue
        (shutil.copytree if item.is_dir() else shutil.copy)(item, target / item.name)  # type: ignore[operator]
    model = AutoModel.from_pretrained(source, dtype=torch.float32)
    model.config.dtype = torch.float32
    model.save_pretrained(target)
    return target


def sentence_transformers_run(model_dir: Path, data: Path, device: str, batch_size: int) -> tuple[Any, float]:
    """sentence-transformers' encode + exact cosine top-100, as a boltir Run (for the same evaluator)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from boltir import DocDataset, QueryDataset, Run

    docs = list(DocDataset(data))
    queries = QueryDataset(data, split="test")
    model = SentenceTransformer(str(model_dir), device=device)
    model.max_seq_length = 256
    started = time.perf_counter()
    doc_vectors = model.encode([d.text for d in docs], batch_size=batch_size, convert_to_tensor=True)
    encode_s = time.perf_counter() - started
    query_vectors = model.encode([q.text for q in queries.queries], batch_size=batch_size, convert_to_tensor=True)
    scores = torch.nn.functional.normalize(query_vectors.float(), dim=-1) @ torch.nn.functional.normalize(doc_vectors.float(), dim=-1).T
    top = scores.topk(min(100, len(docs)), dim=1)  # a test collection may hold fewer
    run = Run(name="sentence-transformers")
    for query, values, positions in zip(queries.queries, top.values.tolist(), top.indices.tolist()):
        run.add(query.query_id, [docs[p].doc_id for p in positions], values)
    return run, encode_s


def boltir_ndcg(model_dir: Path, data: Path, device: str, precision: str, batch_size: int, workdir: Path) -> tuple[float, float]:
    """nDCG@10 of boltir's own index + search path, and its indexing time."""
    from boltir import BiEncoderModule, DataModule, DocDataset, FaissIndexConfig, QueryDataset, Trainer

    def trainer() -> Trainer:
        return Trainer(**trainer_options(device, lightning_precision(precision)))

    module = BiEncoderModule(model_dir, config=minilm_config())
    index_dir = workdir / f"index-{precision}"
    started = time.perf_counter()
    trainer().index(module, DataModule(DocDataset(data), inference_batch_size=batch_size, num_workers=4), index_dir,
                    FaissIndexConfig())
    index_s = time.perf_counter() - started
    search = trainer().search(module, DataModule(QueryDataset(data, split="test"), inference_batch_size=batch_size),
                              index_dir, k=100, run_dir=workdir / f"runs-{precision}", measures=["nDCG@10"])
    return next(iter(search.results.values()))["nDCG@10"], index_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 directory (fp16 or fp32 weights)")
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="fp32", help="boltir precisions, e.g. fp32,bf16")
    parser.add_argument("--cpu-precisions", default="", help="also run boltir on the CPU at these, e.g. bf16")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    from boltir import QueryDataset, evaluate

    data, workdir = Path(args.data), Path(tempfile.mkdtemp(prefix="parity-"))
    model_dir = fp32_copy(args.model)
    qrels = QueryDataset(data, split="test").qrels
    st_run, st_s = sentence_transformers_run(model_dir, data, args.device, args.batch_size)
    reference = evaluate(st_run, qrels, ["nDCG@10"])["nDCG@10"]
    runs = [{"system": f"sentence-transformers encode + exact ({args.device})", "precision": "fp32", "ndcg@10": reference,
             "encode_s": st_s}]
    boltir_runs = [(args.device, p) for p in args.precisions.split(",")]
    boltir_runs += [("cpu", p) for p in filter(None, args.cpu_precisions.split(","))]
    for device, precision in boltir_runs:
        ndcg, seconds = boltir_ndcg(model_dir, data, device, precision, args.batch_size, workdir / device)
        runs.append({"system": f"boltir index + search ({device})", "precision": precision, "ndcg@10": ndcg, "encode_s": seconds})
    worst = max(abs(r["ndcg@10"] - reference) for r in runs)
    result = {
        "meta": {"machine": machine(args.device), "versions": versions(), "device": args.device,
                 "command": "python -m benchmarks.parity_scifact " + " ".join(sys.argv[1:])},
        "reference_ndcg@10": reference,
        "runs": runs,
        "max_abs_difference": worst,
        "within_tolerance": worst <= args.tolerance,
    }
    write_report(args.out, "parity", result)
    for r in runs:
        print(f"{r['system']:<40} {r['precision']:<5} nDCG@10 {r['ndcg@10']:.4f} ({r['ndcg@10'] - reference:+.4f})  {r['encode_s']:.2f}s")
    print(f"max |difference| {worst:.4f} -> {'PASS' if worst <= args.tolerance else 'FAIL'} (tolerance {args.tolerance})")
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
