"""What search, re-rank and validation share: collect scores into a run per dataset; write it, evaluate it, print a table."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from .._io import writable_dir
from ..data.datasets import dataset_name
from ..data.run import Run
from ..errors import WriteError
from ..eval import DEFAULT_MEASURES, evaluate, format_table, parse_measures, write_results
from ..types import ScoreOutput

log = logging.getLogger(__name__)


def add_scores(run: Run, outputs: ScoreOutput) -> None:
    """Add a predict or validation step's scores to ``run``."""
    for query_id, doc_ids, scores in zip(outputs.query_ids, outputs.doc_ids, outputs.scores):
        run.add(query_id, doc_ids, scores.float().cpu().tolist())


class RunWriter(pl.Callback):
    """Base of SearchCallback and ReRankCallback: one Run per inference dataset, written and evaluated at the end.

    Args:
        run_dir: folder for ``<dataset>.run`` (TREC) and ``<dataset>.metrics.json``.
        run_path: exact run file path (single dataset only; overrides ``run_dir``).
        measures: ir-measures names evaluated when the dataset has qrels.
        run_name: the tag written in the run's last column.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        run_name: str = "boltir",
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.run_path = Path(run_path) if run_path else None
        self.measures = list(measures)
        parse_measures(self.measures)  # an unknown measure fails before any work is done
        self.run_name = run_name
        self.runs: dict[int, Run] = {}
        self.results: dict[str, dict[str, float]] = {}
        self.written: list[Path] = []

    def _run(self, dataloader_idx: int) -> Run:
        return self.runs.setdefault(dataloader_idx, Run(name=self.run_name))

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.runs, self.results, self.written = {}, {}, []
        if trainer.is_global_zero:  # an unwritable destination fails now, not after every query is scored
            if self.run_path is not None and len(_loaders(trainer)) == 1:
                writable_dir(self.run_path.parent, "the folder of run_path")
            else:
                writable_dir(self.run_dir, "run_dir")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        loaders = _loaders(trainer)
        complete: list[Path] = []  # named if a later write fails
        for idx, run in sorted(self.runs.items()):
            dataset = loaders[idx].dataset
            name = dataset_name(dataset, idx)
            path = self.run_path if (self.run_path and len(self.runs) == 1) else self.run_dir / f"{name}.run"
            try:
                complete.append(run.to_trec(path))
                self.written.append(path)
                qrels = getattr(dataset, "qrels", None)
                if qrels and self.measures:  # measures=[]: write the run only
                    self.results[name] = evaluate(run, qrels, self.measures)
                    complete.append(write_results(path.with_suffix(".metrics.json"), self.results[name]))
            except WriteError as exc:
                raise WriteError(f"{exc} Complete files kept: {', '.join(map(str, complete)) or 'none'}.") from exc
            log.info("wrote %s (%d queries)", path, len(run))
        if self.results:
            print(format_table(self.results), flush=True)


def _loaders(trainer: pl.Trainer) -> list[Any]:
    loaders = trainer.predict_dataloaders
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
