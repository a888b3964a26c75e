"""Re-ranking speed of Lightning IR (PyPI ``lightning-ir``; needs ``transformers<5``, so it runs in its own
environment): the same model, pairs, device and precision as :mod:`benchmarks.reranking`.

Systems (``--batch-sizes`` are pairs per forward pass; Lightning IR batches whole queries, so each size is
turned into ``size / depth`` queries per batch, at least one):
  lir-re-rank  ``LightningIRTrainer.re_rank`` with ``ReRankCallback``: a run file (JSONL with the query and
               document texts, which its RunDataset reads without an ir_datasets registration) → model → run on disk
  lir-score    ``CrossEncoderModule.forward(RankBatch)`` over the lists in memory, batch after batch

Run (Lightning IR's python): ``python -m benchmarks.lir_reranking --system lir-re-rank --device cuda ...``
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from .common import dtype_of, lightning_precision, timed, trainer_options, versions
from .reranking import add_arguments, measure, query_length


def _module(args: argparse.Namespace):
    from lightning_ir import CrossEncoderModule
    from lightning_ir.models import MonoConfig

    # BERT sequence classifiers score the pooler's output, as boltir and sentence-transformers do here
    config = MonoConfig(query_length=query_length(args), doc_length=args.max_length - query_length(args) - 3,
                        pooling_strategy="bert_pool", scoring_strategy="rank", linear_bias=True)
    return CrossEncoderModule(model_name_or_path=args.model, config=config)


def _run_file(lists: list, directory: Path) -> Path:
    """The run as JSONL records with their texts: query_id, query, doc_id, text, rank, score."""
    path = directory / "bench-bm25.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for query_id, query, doc_ids, docs in lists:
            for rank, (doc_id, doc) in enumerate(zip(doc_ids, docs), 1):
                handle.write(json.dumps({"query_id": query_id, "query": query, "doc_id": doc_id, "text": doc,
                                         "rank": rank, "score": float(len(doc_ids) - rank)}) + "\n")
    return path


def _queries_per_batch(args: argparse.Namespace, pairs: int) -> int:
    return max(1, pairs // args.depth)


def _lir_re_rank(args: argparse.Namespace, lists: list):
    from lightning_ir import LightningIRDataModule, LightningIRTrainer, ReRankCallback, RunDataset

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    module = _module(args)
    work = Path(tempfile.mkdtemp(prefix="bench-lir-rerank-"))
    runs: dict[int, Path] = {}

    def run_path(part: list) -> Path:
        key = len(part)
        if key not in runs:
            folder = work / f"run-{key}"
            folder.mkdir()
            runs[key] = _run_file(part, folder)
        return runs[key]

    def run(batch_size: int, part: list | None = None) -> float:
        callback = ReRankCallback(save_dir=work / "out", overwrite=True)
        trainer = LightningIRTrainer(callbacks=[callback], **trainer_options(args.device, lightning_precision(args.precision)))
        data = LightningIRDataModule(
            inference_datasets=[RunDataset(run_path(lists if part is None else part), depth=args.depth)],
            inference_batch_size=_queries_per_batch(args, batch_size), num_workers=args.num_workers,
        )
        return timed(lambda: trainer.re_rank(module, data, verbose=False), args.device)

    return run


def _lir_score(args: argparse.Namespace, lists: list):
    import torch
    from lightning_ir.data import RankBatch

    module = _module(args).to(args.device, dtype_of(args.precision)).eval()

    def score_all(batch_size: int, chosen: list) -> None:
        step = _queries_per_batch(args, batch_size)
        with torch.inference_mode():
            for start in range(0, len(chosen), step):
                part = chosen[start : start + step]
                batch = RankBatch(queries=[q for _, q, _, _ in part], docs=[ds for _, _, _, ds in part],
                                  query_ids=[i for i, _, _, _ in part], doc_ids=[ids for _, _, ids, _ in part])
                module.forward(batch).scores.cpu()

    def run(batch_size: int, part: list | None = None) -> float:
        return timed(lambda: score_all(batch_size, lists if part is None else part), args.device)

    return run


SYSTEMS = {"lir-re-rank": _lir_re_rank, "lir-score": _lir_score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, sorted(SYSTEMS))
    measure(parser.parse_args(), SYSTEMS, versions(("lightning-ir", "transformers")))


if __name__ == "__main__":
    main()
