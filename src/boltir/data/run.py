"""The one run type every stage speaks: query id → ranked (doc id, score) list, read and written as TREC files."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path

from .._io import atomic_file
from ..errors import ConfigError, DataFormatError
from .formats import check_id, read_lines, read_tsv, read_whitespace_columns

log = logging.getLogger(__name__)


class Run:
    """Ranked results per query. Scores decide the order; ties break by doc id so output is stable."""

    def __init__(self, rankings: dict[str, dict[str, float]] | None = None, name: str = "boltir") -> None:
        self.rankings: dict[str, dict[str, float]] = {q: dict(d) for q, d in (rankings or {}).items()}
        self.name = name

    # -- building ----------------------------------------------------------------------------------
    def add(self, query_id: str, doc_ids: Iterable[str], scores: Iterable[float]) -> None:
        """Add (or overwrite) scores of documents for a query."""
        ranking = self.rankings.setdefault(query_id, {})
        for doc_id, score in zip(doc_ids, scores, strict=True):
            ranking[doc_id] = float(score)

    @classmethod
    def from_trec(cls, path: str | os.PathLike[str], depth: int | None = None) -> Run:
        """Read a TREC run file (``qid Q0 docid rank score tag``); ``depth`` keeps each query's top ``depth``.

        The six columns are read here (not by ir-measures) so that a bad line is reported with its number. Ids
        need no check: whitespace-separated fields are never empty and hold no whitespace (an id with a space
        shows up as a line with too many fields). A NaN or infinite score is refused: it would sort arbitrarily.
        """
        run = cls(name=Path(path).stem)
        for number, (qid, _, doc_id, _, score, tag) in read_whitespace_columns(path, 6):
            try:
                value = float(score)
            except ValueError:
                raise DataFormatError(f"score '{score}' is not a number", path, number) from None
            if not math.isfinite(value):
                raise DataFormatError(f"score '{score}' is not a finite number: fix the run that wrote it", path, number)
            run.rankings.setdefault(qid, {})[doc_id] = value
            run.name = tag
        if not run.rankings:
            raise DataFormatError("the run file holds no results", path)
        return run.top_k(depth) if depth else run

    def top_k(self, k: int) -> Run:
        return Run({q: dict(self.ranked(q)[:k]) for q in self.rankings}, self.name)

    # -- reading -----------------------------------------------------------------------------------
    def ranked(self, query_id: str) -> list[tuple[str, float]]:
        """The query's (doc id, score) pairs, best first."""
        return sorted(self.rankings[query_id].items(), key=lambda item: (-item[1], item[0]))

    def __getitem__(self, query_id: str) -> list[tuple[str, float]]:
        return self.ranked(query_id)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self.rankings

    def __len__(self) -> int:
        return len(self.rankings)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rankings)

    @property
    def query_ids(self) -> list[str]:
        return list(self.rankings)

    def to_trec(self, path: str | os.PathLike[str]) -> Path:
        """Write the run as a TREC file, atomically (a reader never sees half a run); an id with whitespace,
        which would make the file unreadable, is refused before anything is written."""
        for qid, ranking in self.rankings.items():
            check_id(qid, "query id", path, None)
            for doc_id in ranking:
                check_id(doc_id, "document id", path, None)
        with atomic_file(path) as handle:
            for qid in self.rankings:
                for rank, (doc_id, score) in enumerate(self.ranked(qid), start=1):
                    handle.write(f"{qid} Q0 {doc_id} {rank} {score!r} {self.name}\n")  # repr: exact round trip
        return Path(path)


FUSION_NORMALIZATIONS = ("minmax", "none")


def fuse_runs(runs: Sequence[Run], weights: Sequence[float] | None = None, normalize: str = "minmax", name: str = "fused") -> Run:
    """Hybrid retrieval: each document's weighted sum of its scores in ``runs`` (e.g. a dense and a sparse run).

    ``minmax`` rescales every query's scores of each run to [0, 1] first, since dense cosines and sparse dot
    products live on different scales; a document a run did not retrieve gets that run's lowest score of the query.
    """
    weights = [1.0] * len(runs) if weights is None else list(weights)
    if not runs or len(weights) != len(runs):
        raise ConfigError(f"fuse_runs needs at least one run and one weight per run, got {len(runs)} runs and {len(weights)} weights.")
    if normalize not in FUSION_NORMALIZATIONS:
        raise ConfigError(f"normalize='{normalize}' does not exist; choose one of {list(FUSION_NORMALIZATIONS)}.")
    fused = Run(name=name)
    for qid in dict.fromkeys(q for run in runs for q in run.query_ids):
        per_run = [_query_scores(run.rankings.get(qid, {}), normalize) for run in runs]
        doc_ids = dict.fromkeys(d for scores, _ in per_run for d in scores)
        fused.add(qid, doc_ids, [sum(w * scores.get(d, floor) for w, (scores, floor) in zip(weights, per_run)) for d in doc_ids])
    return fused


def _query_scores(scores: dict[str, float], normalize: str) -> tuple[dict[str, float], float]:
    """A query's scores (min-max scaled when asked) and the score of a document the run did not retrieve."""
    if not scores:
        return {}, 0.0
    low, high = min(scores.values()), max(scores.values())
    if normalize == "none":
        return scores, low
    span = high - low
    return {d: (s - low) / span if span > 0 else 1.0 for d, s in scores.items()}, 0.0


Qrels = dict[str, dict[str, int]]


def read_qrels(path: str | os.PathLike[str]) -> Qrels:
    """Read BEIR ``query-id\\tcorpus-id\\tscore`` TSV (header optional) or TREC ``qid 0 docid rel`` qrels."""
    path = Path(path)
    qrels: Qrels = {}
    first = next((line for _, line in read_lines(path) if line.strip()), "")
    if len(first.split()) == 4:
        rows = ((n, (f[0], f[2], f[3])) for n, f in read_whitespace_columns(path, 4))
    else:
        rows = ((n, (r[0], r[1], r[2])) for n, r in read_tsv(path, 3, header=("query-id", "corpus-id", "score")))
    for number, (qid, doc_id, relevance) in rows:
        try:
            grade = int(float(relevance))
        except ValueError:
            raise DataFormatError(f"relevance '{relevance}' is not a number", path, number) from None
        query = qrels.setdefault(check_id(qid.strip(), "query id", path, number), {})
        query[check_id(doc_id.strip(), "document id", path, number)] = grade
    return qrels


def warn_judged_outside(qrels: Qrels, doc_ids: Container[str], corpus: str) -> int:
    """Log one warning with the number of judged documents that ``doc_ids`` (the corpus) lacks, and return it.

    Evaluation keeps trec_eval's behaviour (such a document counts as relevant and never retrieved, lowering
    recall); the warning says that the qrels and the corpus may not belong together.
    """
    outside = sorted({d for docs in qrels.values() for d in docs if d not in doc_ids})
    if outside:
        log.warning(
            "the qrels judge %d document(s) that are not in %s (first: '%s'); evaluation counts them as never "
            "retrieved, as trec_eval does: check that the qrels belong to this corpus", len(outside), corpus, outside[0]
        )
    return len(outside)
