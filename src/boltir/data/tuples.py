"""Training data: fixed-size lists of a query, a positive, negatives and targets, from tuple files or a run.

Every dataset here yields :class:`TrainSample` lists of ``list_size`` documents: a positive first, then
``list_size - 1`` negatives sampled afresh each epoch (with repeats only when a query has too few). Sampling
depends on (seed, epoch, index) alone, so a fit resumed from a checkpoint sees the lists an uninterrupted one sees.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .._io import atomic_file
from ..errors import ConfigError, DataFormatError, UnknownIdError
from .batches import TrainSample
from .datasets import DocDataset, QueryDataset, RunDataset
from .formats import read_jsonl
from .run import Run

log = logging.getLogger(__name__)

Candidate = tuple[str, str, float]  # (doc id, text, target)


@dataclass
class TupleRecord:
    """What one query's lists are sampled from; ``where`` names its origin in error messages."""

    query_id: str
    query: str
    positives: list[Candidate]
    negatives: list[Candidate]
    where: str


class TrainingTuples(Dataset):
    """Base of the tuple datasets: checks the records and samples a fixed-size list from one per index."""

    def __init__(self, records: list[TupleRecord], list_size: int = 8, seed: int = 0) -> None:
        if isinstance(list_size, bool) or not isinstance(list_size, int) or list_size < 1:
            raise ConfigError(f"list_size must be an integer >= 1 (a positive plus negatives), got {list_size!r}.")
        for record in records:
            if not record.positives:
                raise DataFormatError(f"{record.where}: query '{record.query_id}' has no positive document; every tuple needs one.")
            if list_size > 1 and not record.negatives:
                raise DataFormatError(
                    f"{record.where}: query '{record.query_id}' has no negatives, but list_size={list_size} needs "
                    f"{list_size - 1}; add negatives or set list_size: 1 (in-batch negatives only)."
                )
        if not records:
            raise ConfigError("the training set holds no usable tuples.")
        self.records, self.list_size, self.seed = records, list_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called through the sampler before each epoch: negatives are sampled anew."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def write_jsonl(self, path: str | os.PathLike[str], negatives: int | None = None) -> Path:
        """Write the records as the JSONL :class:`TupleDataset` reads (documents as ``{"id", "text"}``).

        ``negatives`` keeps each query's first ones (a run's window is in rank order). Targets other than the
        labels 1 (positive) / 0 (negative) are written as ``scores``, for every line or none.
        """
        if negatives is not None and negatives < 0:
            raise ConfigError(f"negatives must be >= 0, got {negatives}.")
        kept = [(r, r.negatives[:negatives] if negatives is not None else r.negatives) for r in self.records]
        labelled = all(y == 1.0 for r, _ in kept for *_, y in r.positives) and all(y == 0.0 for _, n in kept for *_, y in n)
        with atomic_file(path) as handle:
            for record, negs in kept:
                line: dict[str, Any] = {
                    "query_id": record.query_id,
                    "query": record.query,
                    "pos": [{"id": d, "text": t} for d, t, _ in record.positives],
                    "neg": [{"id": d, "text": t} for d, t, _ in negs],
                }
                if not labelled:
                    line["scores"] = [y for *_, y in record.positives + negs]
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return Path(path)

    def __getitem__(self, index: int) -> TrainSample:
        record = self.records[index]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        chosen = [rng.choice(record.positives), *_sample(record.negatives, self.list_size - 1, rng)]
        return TrainSample(
            record.query_id, record.query, [c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen]
        )


def _sample(items: list[Candidate], k: int, rng: random.Random) -> list[Candidate]:
    """``k`` items without repeats when there are enough, else all of them plus random repeats."""
    if k <= 0:
        return []
    if len(items) >= k:
        return rng.sample(items, k)
    picked = items + [rng.choice(items) for _ in range(k - len(items))]
    rng.shuffle(picked)
    return picked


# -- tuple files ---------------------------------------------------------------------------------------
_POSITIVE_KEYS = ("positives", "pos")
_NEGATIVE_KEYS = ("negatives", "neg")
_SCORE_KEYS = ("scores", "teacher_scores")


def _first(record: dict[str, Any], keys: tuple[str, ...], default: Any = None) -> Any:
    return next((record[k] for k in keys if k in record), default)


class TupleDataset(TrainingTuples):
    """Training tuples from a JSONL file, one query per line.

    A line holds ``query`` (or ``query_id`` with ``queries`` given), ``positives`` (alias ``pos``), optional
    ``negatives`` (``neg``) and optional ``scores`` (``teacher_scores``): one teacher score per document,
    positives first, which become the targets for distillation; without them positives get target 1 and
    negatives 0. Documents are texts, or ids looked up in ``corpus`` when one is given, or ``{"id", "text"}``.

    Example line: ``{"query": "what causes tides", "pos": ["The moon ..."], "neg": ["Paris is ..."]}``
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        list_size: int = 8,
        corpus: str | os.PathLike[str] | None = None,
        queries: str | os.PathLike[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.source = str(path)
        self.path = Path(path)
        lines = list(read_jsonl(self.path))
        if not lines:
            raise DataFormatError("the tuple file holds no tuples", self.path)
        doc_texts = self._doc_texts(lines, corpus)
        query_texts = self._query_texts(lines, queries)
        records = [self._record(line, record, doc_texts, query_texts) for line, record in lines]
        with_scores = [r for r in records if r is not None and r[1]]
        if with_scores and len(with_scores) != len(records):
            line = next(line for (line, _), r in zip(lines, records) if not r[1])
            raise DataFormatError("has no teacher scores while other lines have them; give every line scores or none", self.path, line)
        super().__init__([r[0] for r in records], list_size, seed)

    def _record(
        self, line: int, record: dict[str, Any], doc_texts: dict[str, str] | None, query_texts: dict[str, str] | None
    ) -> tuple[TupleRecord, bool]:
        where = f"{self.path}:{line}"
        query_id = str(record.get("query_id", record.get("qid", f"line-{line}")))
        query = record.get("query")
        if query is None:
            if query_texts is None or query_id not in query_texts:
                raise DataFormatError("no 'query' text (or a 'query_id' found in the queries given)", self.path, line)
            query = query_texts[query_id]
        positives = self._docs(_first(record, _POSITIVE_KEYS, []), doc_texts, line, "positives")
        negatives = self._docs(_first(record, _NEGATIVE_KEYS, []), doc_texts, line, "negatives")
        if not positives:
            raise DataFormatError(f"query '{query_id}' has no positive document; every tuple needs one", self.path, line)
        scores = _first(record, _SCORE_KEYS)
        if scores is None:
            targets = [1.0] * len(positives) + [0.0] * len(negatives)
        else:
            count = len(positives) + len(negatives)
            if not isinstance(scores, list) or len(scores) != count:
                got = len(scores) if isinstance(scores, list) else type(scores).__name__
                raise DataFormatError(
                    f"teacher scores must be a list with one number per document ({len(positives)} positives then "
                    f"{len(negatives)} negatives = {count}), got {got}", self.path, line
                )
            try:
                targets = [float(s) for s in scores]
            except (TypeError, ValueError):
                raise DataFormatError("teacher scores must be numbers", self.path, line) from None
        docs = [(d, t, y) for (d, t), y in zip(positives + negatives, targets)]
        return TupleRecord(str(query_id), str(query), docs[: len(positives)], docs[len(positives) :], where), scores is not None

    def _docs(self, entries: Any, doc_texts: dict[str, str] | None, line: int, what: str) -> list[tuple[str, str]]:
        if not isinstance(entries, list):
            raise DataFormatError(f"'{what}' must be a list, got {type(entries).__name__}", self.path, line)
        docs = []
        for position, entry in enumerate(entries):
            if isinstance(entry, dict) and "text" in entry:
                docs.append((str(entry.get("id", entry.get("_id", f"{what}-{position}"))), str(entry["text"])))
            elif doc_texts is not None and isinstance(entry, (str, int, dict)):
                doc_id = str(entry.get("id", entry.get("_id")) if isinstance(entry, dict) else entry)
                docs.append((doc_id, doc_texts[doc_id]))
            elif isinstance(entry, str):
                docs.append((f"line-{line}-{what}-{position}", entry))
            else:
                raise DataFormatError(f"{what}[{position}] must be a text, an id (with a corpus) or {{'id', 'text'}}", self.path, line)
        return docs

    def _doc_texts(self, lines: list[tuple[int, dict]], corpus: str | os.PathLike[str] | None) -> dict[str, str] | None:
        if corpus is None:
            return None
        corpus = DocDataset(corpus)
        wanted = set()
        for _, record in lines:
            for entry in [*_first(record, _POSITIVE_KEYS, []), *_first(record, _NEGATIVE_KEYS, [])]:
                if not (isinstance(entry, dict) and "text" in entry):
                    wanted.add(str(entry.get("id", entry.get("_id")) if isinstance(entry, dict) else entry))
        texts = corpus.texts(wanted)
        missing = sorted(wanted - set(texts))
        if missing:
            raise UnknownIdError(
                f"{self.path}: {len(missing)} document id(s) are not in the corpus {corpus.source} (first: '{missing[0]}')."
            )
        return texts

    @staticmethod
    def _query_texts(lines: list[tuple[int, dict]], queries: str | os.PathLike[str] | None) -> dict[str, str] | None:
        return None if queries is None else QueryDataset(queries, split=None).texts()


# -- lists from a first-stage run ----------------------------------------------------------------------
class RunTupleDataset(TrainingTuples):
    """Training lists from a first-stage run: hard negatives from a window of its ranking.

    With ``targets="qrels"`` positives are the query's relevant documents (qrels of ``split``) and negatives
    the run's documents in ``rank_window`` that are not judged relevant. With ``targets="run"`` the run is a
    teacher: the window's top document comes first and every document's target is the run's score (distillation).

    Args:
        run: a TREC run file over the training queries (e.g. BM25 or a zero-shot model).
        queries / corpus / split: as for :class:`RunDataset` (a BEIR folder for both, and its qrels split).
        list_size: documents per list (1 positive + ``list_size - 1`` negatives).
        rank_window: ``(start, end)`` slice of each ranking, 0-based, end excluded; ``(0, 100)`` = ranks 1..100.
        targets: ``"qrels"`` (labels) or ``"run"`` (the run's scores).
        seed: seed of the negative sampling.
        teacher_run: a run whose scores become every document's target (distillation from another model, e.g.
            a cross-encoder's re-ranking of ``run``); a document it did not score gets its lowest score of the query.
    """

    def __init__(
        self,
        run: str | os.PathLike[str],
        queries: str | os.PathLike[str],
        corpus: str | os.PathLike[str],
        split: str | None = "train",
        list_size: int = 8,
        rank_window: Sequence[int] = (0, 100),
        targets: str = "qrels",
        seed: int = 0,
        teacher_run: str | os.PathLike[str] | None = None,
    ) -> None:
        if len(rank_window) != 2 or not 0 <= rank_window[0] < rank_window[1]:
            raise ConfigError(f"rank_window must be [start, end] with 0 <= start < end, got {list(rank_window)}.")
        if targets not in ("qrels", "run"):
            raise ConfigError(f"targets must be 'qrels' (relevance labels) or 'run' (the run's scores), got '{targets}'.")
        start, end = int(rank_window[0]), int(rank_window[1])
        candidates = RunDataset(run, queries, corpus, depth=end, split=split)
        self.source = str(candidates.run_path or "run")
        qrels = candidates.qrels
        if targets == "qrels" and not qrels:
            raise ConfigError("targets='qrels' needs relevance judgements: give queries with a qrels split.")
        records, skipped = [], 0
        for sample in candidates.samples:
            window = list(zip(sample.doc_ids, sample.docs, sample.scores))[start:end]
            where = f"{self.source}, query '{sample.query_id}'"
            if targets == "run":
                if window:
                    records.append(TupleRecord(sample.query_id, sample.query, window[:1], window[1:], where))
                continue
            judged = qrels.get(sample.query_id, {})  # type: ignore[union-attr]
            positives = [(d, "", float(r)) for d, r in sorted(judged.items()) if r > 0]
            if not positives:
                skipped += 1
                continue
            negatives = [(d, text, 0.0) for d, text, _ in window if judged.get(d, 0) <= 0]
            records.append(TupleRecord(sample.query_id, sample.query, positives, negatives, where))
        if skipped:
            log.warning("%s: skipped %d queries without a relevant document in the qrels", self.source, skipped)
        self._fill_texts(records, candidates.corpus)
        if teacher_run is not None:
            _teacher_targets(records, Run.from_trec(teacher_run), str(teacher_run))
        super().__init__(records, list_size, seed)

    @staticmethod
    def _fill_texts(records: list[TupleRecord], corpus: DocDataset) -> None:
        """Relevant documents may lie outside the run: read their texts in one pass over the corpus."""
        wanted = {d for r in records for d, text, _ in r.positives if not text}
        if not wanted:
            return
        texts = corpus.texts(wanted)
        missing = sorted(wanted - set(texts))
        if missing:
            raise UnknownIdError(f"the qrels name {len(missing)} document(s) not in {corpus.source} (first: '{missing[0]}').")
        for record in records:
            record.positives = [(d, text or texts[d], y) for d, text, y in record.positives]


def _teacher_targets(records: list[TupleRecord], teacher: Run, source: str) -> None:
    """Every document's target becomes the teacher's score; one it did not score gets the query's lowest."""
    missing_queries = [r.query_id for r in records if r.query_id not in teacher]
    if missing_queries:
        raise UnknownIdError(
            f"{source}: the teacher run has no scores for {len(missing_queries)} training queries (first: "
            f"'{missing_queries[0]}'); pass a teacher run over the same queries."
        )
    unscored = 0
    for record in records:
        scores = teacher.rankings[record.query_id]
        floor = min(scores.values())
        unscored += sum(d not in scores for d, _, _ in record.positives + record.negatives)
        record.positives = [(d, t, scores.get(d, floor)) for d, t, _ in record.positives]
        record.negatives = [(d, t, scores.get(d, floor)) for d, t, _ in record.negatives]
    if unscored:
        log.warning("%s: %d training documents have no teacher score; they get their query's lowest", source, unscored)


# -- mixing --------------------------------------------------------------------------------------------
class MixedTupleDataset(Dataset):
    """Draws each sample from one of several training sets, picked with probability proportional to its weight.

    Args:
        datasets: training sets with the same ``list_size``.
        weights: one per dataset (default: equal).
        length: samples per epoch (default: the sum of the datasets' lengths).
        seed: seed of the draws.
    """

    def __init__(
        self, datasets: Sequence[Dataset], weights: Sequence[float] | None = None, length: int | None = None, seed: int = 0
    ) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ConfigError("MixedTupleDataset needs at least one dataset.")
        self.weights = [1.0] * len(self.datasets) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.datasets) or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ConfigError(f"weights must be {len(self.datasets)} non-negative numbers, not all 0; got {list(weights or [])}.")
        sizes = {getattr(d, "list_size", None) for d in self.datasets} - {None}
        if len(sizes) > 1:
            raise ConfigError(f"mixed datasets must share one list_size, got {sorted(sizes)}.")
        self.list_size = sizes.pop() if sizes else None
        self.length = length if length is not None else sum(len(d) for d in self.datasets)  # type: ignore[arg-type]
        if self.length < 1:
            raise ConfigError(f"length must be >= 1, got {self.length}.")
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for dataset in self.datasets:
            if callable(getattr(dataset, "set_epoch", None)):
                dataset.set_epoch(epoch)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrainSample:
        rng = random.Random(f"mix:{self.seed}:{self.epoch}:{index}")
        dataset = rng.choices(self.datasets, weights=self.weights)[0]
        return dataset[rng.randrange(len(dataset))]  # type: ignore[arg-type]


__all__ = ["MixedTupleDataset", "RunTupleDataset", "TrainingTuples", "TupleDataset", "TupleRecord"]
