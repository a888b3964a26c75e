"""Evaluation through ir-measures, and results printed as a table and written as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import ir_measures

from .._io import atomic_file
from ..data.run import Qrels, Run
from ..errors import ConfigError

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")


def parse_measures(names: Iterable[str]) -> list:
    measures = []
    for name in names:
        try:
            measures.append(ir_measures.parse_measure(name))
        except (NameError, ValueError, SyntaxError, TypeError, AttributeError):
            raise ConfigError(f"'{name}' is not an ir-measures measure (e.g. nDCG@10, RR@10, R@100, AP).") from None
    return measures


def evaluate(run: Run, qrels: Qrels, measures: Sequence[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over the judged queries; a judged query missing from the run scores zero."""
    parsed = parse_measures(measures)
    scored = [ir_measures.ScoredDoc(q, d, s) for q in run.rankings for d, s in run.rankings[q].items()]
    judgements = [ir_measures.Qrel(q, d, r) for q, docs in qrels.items() for d, r in docs.items()]
    per_query: dict[str, dict[str, float]] = {str(m): {} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, judgements, scored):
        per_query[str(metric.measure)][metric.query_id] = metric.value
    judged = [q for q, docs in qrels.items() if any(r > 0 for r in docs.values())]
    return {
        name: (sum(values.get(q, 0.0) for q in judged) / len(judged) if judged else 0.0)
        for name, values in zip(measures, per_query.values())
    }


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per run, one column per measure."""
    if not results:
        return ""
    measures = list(next(iter(results.values())))
    name_width = max(len("run"), *(len(n) for n in results))
    widths = [max(len(m), 6) for m in measures]
    header = "run".ljust(name_width) + "  " + "  ".join(m.rjust(w) for m, w in zip(measures, widths))
    lines = [header, "-" * len(header)]
    for name, values in results.items():
        lines.append(name.ljust(name_width) + "  " + "  ".join(f"{values[m]:.4f}".rjust(w) for m, w in zip(measures, widths)))
    return "\n".join(lines)


def write_results(path: str | os.PathLike[str], results: dict[str, float]) -> Path:
    with atomic_file(path) as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    return Path(path)
