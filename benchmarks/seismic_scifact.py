"""Seismic vs the exact inverted index on SciFact, with one SPLADE model's vectors in both.

Reports, per searcher: nDCG@10 / R@100, recall@10 of the engine's top-10 against the exact top-10, index size
and per-query search latency (queries one at a time, encoding excluded). SPLADE-tiny is 4.4M parameters, so
the full collection runs on CPU in minutes.

    python benchmarks/seismic_scifact.py                                   # packaged SPLADE-tiny, full SciFact, CPU
    python benchmarks/seismic_scifact.py --limit-docs 300 --limit-queries 20   # tiny check
    python benchmarks/seismic_scifact.py --model runs/splade-ft --device cuda --precision bf16 --data .carry/scifact
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_check import Variant, clean, common_arguments, compare, encode_into, load_collection, write_results  # noqa: E402

from boltir import SeismicIndexConfig, SparseExactIndexConfig, SpladeModule  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default="boltir/splade-tiny")
    parser.add_argument("--heap-factors", type=float, nargs="*", default=[0.5, 0.6, 0.8, 0.9],
                        help="extra Seismic heap factors to measure beside the default")
    parser.add_argument("--name", default="seismic_scifact")
    args = parser.parse_args(argv)

    collection = load_collection(args.data, limit_docs=args.limit_docs, limit_queries=args.limit_queries)
    module = SpladeModule(args.model).to(args.device)
    work = Path(args.work or tempfile.mkdtemp(prefix="seismic-scifact-"))
    default = SeismicIndexConfig()
    built = encode_into(module, collection, {"exact": SparseExactIndexConfig(), "seismic": default}, work, args.batch_size,
                        args.precision)
    variants = [Variant("exact", "exact", nested=True), Variant(f"seismic (default, heap_factor={default.heap_factor})", "seismic")]
    variants += [Variant(f"seismic heap_factor={h}", "seismic", {"heap_factor": h}) for h in args.heap_factors]
    rows = compare(module, collection, variants, "exact", work, ["nDCG@10", "R@100"], precision=args.precision)
    setup = {
        "model": args.model, "device": args.device, "precision": args.precision, "docs": built["docs"],
        "queries": len(collection.queries), "encode_docs_s": built["encode_docs_s"], "indexes": built["indexes"],
        "seismic_settings": default.to_dict(),
    }
    path = write_results(Path(args.out), args.name, f"SPLADE on SciFact: Seismic vs exact ({args.model})", setup, rows)
    clean(work, keep=args.work is not None)
    return path


if __name__ == "__main__":
    main()
