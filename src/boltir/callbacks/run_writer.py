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
from ..data.run import Qrels, Run
from ..errors import ConfigError, WriteError
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
        run_dir: folder for ``<run name>.run`` (TREC) and ``<run name>.metrics.json``.
        run_path: the run file's exact path, or a list of paths, one per dataset in order (overrides ``run_dir``;
            each run is named by its file's stem). Configs that chain steps name their files this way.
        measures: ir-measures names evaluated when the dataset has qrels.
        run_name: the run's name: its file name in ``run_dir``, its row in the results table and the tag in its
            last column. Default: the dataset's name (its data folder and split, e.g. ``scifact-test``); with
            several datasets each run is ``<run_name>-<dataset name>``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str] = "runs",
        run_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        run_name: str | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        paths = [run_path] if isinstance(run_path, (str, os.PathLike)) else list(run_path or [])
        self.run_paths = [Path(path) for path in paths]
        self.measures = list(measures)
        parse_measures(self.measures)  # an unknown measure fails before any work is done
        self.run_name = run_name
        self.runs: dict[int, Run] = {}
        self.results: dict[str, dict[str, float]] = {}
        self.written: list[Path] = []

    def _run(self, dataloader_idx: int) -> Run:
        return self.runs.setdefault(dataloader_idx, Run(name=self.run_name or "boltir"))

    def _name_and_path(self, dataset: Any, index: int) -> tuple[str, Path]:
        name = dataset_name(dataset, index)
        if self.run_paths:
            return self.run_paths[index].stem, self.run_paths[index]
        if self.run_name:
            name = self.run_name if len(self.runs) == 1 else f"{self.run_name}-{name}"
        return name, self.run_dir / f"{name}.run"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.runs, self.results, self.written = {}, {}, []
        count = len(_loaders(trainer))
        if self.run_paths and len(self.run_paths) != count:
            raise ConfigError(
                f"run_path names {len(self.run_paths)} file(s) for {count} datasets: give one path per dataset, "
                "in order (or run_dir to name them after the datasets)."
            )
        if trainer.is_global_zero:  # an unwritable destination fails now, not after every query is scored
            for folder in sorted({path.parent for path in self.run_paths}):
                writable_dir(folder, "the folder of run_path")
            if not self.run_paths:
                writable_dir(self.run_dir, "run_dir")

    def check_qrels(self, qrels: Qrels) -> None:
        """Before evaluating: warn about judged documents outside the corpus, where the subclass knows it (search
        does; a re-ranked run's dataset has warned already)."""

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        loaders = _loaders(trainer)
        complete: list[Path] = []  # named if a later write fails
        for idx, run in sorted(self.runs.items()):
            dataset = loaders[idx].dataset
            name, path = self._name_and_path(dataset, idx)
            try:
                complete.append(run.to_trec(path))
                self.written.append(path)
                qrels = getattr(dataset, "qrels", None)
                if qrels and self.measures:  # measures=[]: write the run only
                    self.check_qrels(qrels)
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
