"""Documents, queries and runs from BEIR folders, JSONL/TSV files, TREC runs, or ir_datasets ids.

Corpora stream (a 9M-document corpus never sits in memory); queries and runs are small and load at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import ConfigError, DataFormatError, UnknownIdError
from . import ir_datasets as irds
from .batches import Doc, Query, RankSample
from .formats import check_id, parse_json_object, read_jsonl, read_lines, read_tsv
from .run import Qrels, Run, read_qrels, warn_judged_outside

log = logging.getLogger(__name__)

_ID_KEYS = ("_id", "id", "doc_id", "docid", "query_id", "qid")
_TEXT_KEYS = ("text", "contents", "body", "query")
_LEADING_ID = re.compile(r'\s*\{\s*"_id"\s*:\s*"([^"\\]*)"')  # a JSONL record opening with a plain "_id" string


def _is_path(source: str | os.PathLike[str]) -> bool:
    return Path(source).exists() or str(source).startswith((".", "/", "~")) or Path(str(source)).suffix != ""


def _field(record: dict, keys: tuple[str, ...], path: Path, line: int, what: str) -> str:
    for key in keys:
        if key in record and record[key] is not None:
            return str(record[key])
    raise DataFormatError(f"no {what} field (looked for {list(keys)})", path, line)


def _id_field(record: dict, path: Path, line: int, what: str) -> str:
    return check_id(_field(record, _ID_KEYS, path, line, what), what, path, line)


def join_title(title: str, text: str) -> str:
    """Document text as BEIR evaluations build it: ``title + " " + text`` (just text when untitled)."""
    title, text = title.strip(), text.strip()
    return f"{title} {text}" if title else text


def stream_shard(process_shard: tuple[int, int] = (0, 1)) -> tuple[int, int]:
    """This reader's share of a stream: one shard per DataLoader worker of every process (GPU) of a run,
    numbered ``rank * workers + worker`` of ``world_size * workers``."""
    worker = get_worker_info()
    worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
    rank, world = process_shard
    return rank * workers + worker_id, world * workers


DUPLICATE_IDS = ("error", "first", "last")


def _check_policy(duplicate_ids: str) -> str:
    if duplicate_ids not in DUPLICATE_IDS:
        raise ConfigError(f"duplicate_ids='{duplicate_ids}' does not exist; choose one of {list(DUPLICATE_IDS)}.")
    return duplicate_ids


def _keep_later(policy: str, record_id: str, source: str, earlier: int, later: int, what: str = "document id") -> bool:
    """Whether a repeated id's later record replaces the earlier one; ``policy="error"`` refuses both."""
    if policy == "error":
        raise DataFormatError(
            f"{what} '{record_id}' repeats the one at {source}:{earlier}: remove one, or set duplicate_ids: first "
            "(keep the earlier record) or last", source, later
        )
    return policy == "last"


def _one_per_id(rows: Iterable[tuple[int, str, str]], policy: str, source: str, what: str) -> tuple[dict[str, tuple[int, str]], int]:
    """``{id: (line, text)}`` with one record per id, in the order ids first appear (a repeat as ``policy``
    says), and the number of repeated records."""
    kept: dict[str, tuple[int, str]] = {}
    repeats = 0
    for line, record_id, text in rows:
        earlier = kept.get(record_id)
        if earlier is not None:
            repeats += 1
        if earlier is None or _keep_later(policy, record_id, source, earlier[0], line, what):
            kept[record_id] = (line, text)
    return kept, repeats


def _id_hash(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")


class DocIdSet:
    """A compact set of document ids: sorted 8-byte hashes (8 bytes per id, where a Python set takes ~100).

    A resumed indexing run skips the documents already in complete shards with it. Two ids share a hash with
    probability about n^2 / 2^65 (3e-6 for 10M ids).
    """

    def __init__(self, doc_ids: Iterable[str]) -> None:
        self._hashes = np.unique(np.fromiter((_id_hash(doc_id) for doc_id in doc_ids), dtype=np.uint64))

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str) or not len(self._hashes):
            return False
        value = np.uint64(_id_hash(doc_id))
        position = int(np.searchsorted(self._hashes, value))
        return position < len(self._hashes) and self._hashes[position] == value

    def __len__(self) -> int:
        return len(self._hashes)


class DocDataset(IterableDataset):
    """Streams documents from a BEIR folder, a ``corpus.jsonl``/``.tsv`` file, or an ir_datasets id.

    Empty documents are skipped with a warning (one bad record should not stop a long indexing job). Ids are
    checked before anything is encoded, in one streaming pass: each must be non-empty and free of whitespace,
    and a repeated id is refused naming both lines, unless ``duplicate_ids`` is ``"first"`` or ``"last"`` (keep
    that record of each id, drop the others). Under several DataLoader workers and processes (GPUs) each
    reader keeps, and parses, only its share.
    """

    def __init__(self, source: str | os.PathLike[str], duplicate_ids: str = "error") -> None:
        super().__init__()
        self.source = str(source)
        self.duplicate_ids = _check_policy(duplicate_ids)
        path = Path(source)
        if path.is_dir():
            path = path / "corpus.jsonl"
        self.path: Path | None = path if _is_path(source) else None
        if self.path is not None and not self.path.is_file():
            raise DataFormatError("corpus file not found (expected a BEIR folder, .jsonl or .tsv file)", self.path)
        self._length: int | None = None
        self._dropped: set[int] | None = None  # lines (records) left out as repeats of an id; known after the check
        self.process_shard = (0, 1)  # (rank, world size): set by the DataModule when several processes read
        self.skip_ids: DocIdSet | None = None  # documents a resumed indexing run already has in its shards

    def _records(self, shard: int = 0, shards: int = 1) -> Iterator[tuple[int, str, str]]:
        """``(line, id, text)`` of every ``shards``-th record from the ``shard``-th on (line: record number for
        ir_datasets); ids are checked by the readers."""
        if self.path is None:
            rows = ((n, doc_id, join_title(title, text)) for n, doc_id, title, text in irds.iter_docs(self.source))
        elif self.path.suffix in (".tsv", ".tsv.gz") or self.path.name.endswith(".tsv.gz"):
            rows = (
                (n, check_id(r[0].strip(), "document id", self.path, n), join_title(r[2] if len(r) > 2 else "", r[1]))
                for n, r in read_tsv(self.path, 2, header=("id", "text"))
            )
        else:
            for line, record in read_jsonl(self.path, shard=(shard, shards)):  # parses its own share only
                doc_id = _id_field(record, self.path, line, "document id")
                text = _field(record, _TEXT_KEYS, self.path, line, "text")
                yield line, doc_id, join_title(str(record.get("title") or ""), text)
            return
        for position, row in enumerate(rows):
            if position % shards == shard:
                yield row

    @property
    def _where(self) -> str:
        return self.source if self.path is None else str(self.path)

    def _ids(self) -> Iterator[tuple[int, str]]:
        """``(line, id)`` of every record. A JSONL line whose one ``"_id"`` key opens it with a plain string (BEIR's
        layout) gives its id without a JSON parse (4x faster: a 10M-document corpus is read once more before any
        encoding); the rest of such a line is parsed, and its errors reported, by the reader that encodes it."""
        if self.path is None or self.path.suffix != ".jsonl":
            yield from ((line, doc_id) for line, doc_id, _ in self._records())
            return
        for number, line in read_lines(self.path):
            found = _LEADING_ID.match(line)
            if found is not None and line.count('"_id"') == 1:
                yield number, check_id(found[1], "document id", self.path, number)
            elif line.strip():
                yield from ((n, doc_id) for n, doc_id, _ in self._records_of(number, line))

    def _records_of(self, number: int, line: str) -> Iterator[tuple[int, str, str]]:
        """The record of one JSONL line, as :meth:`_records` reads it."""
        assert self.path is not None
        record = parse_json_object(line, self.path, number)
        text = _field(record, _TEXT_KEYS, self.path, number, "text")
        yield number, _id_field(record, self.path, number, "document id"), text

    def check_ids(self) -> None:
        """Read every id once, before anything is encoded: an invalid id raises; a repeated one raises or is
        marked to drop. Memory holds 8 bytes per id (a hash); a second pass, over the records whose hash repeats,
        tells repeats from hash collisions and names their lines."""
        if self._dropped is not None:
            return
        hashes = np.fromiter((hash(doc_id) for _, doc_id in self._ids()), dtype=np.int64)
        records = len(hashes)
        hashes.sort()
        repeated = set(hashes[1:][hashes[1:] == hashes[:-1]].tolist())
        del hashes
        first_line: dict[str, int] = {}
        dropped: set[int] = set()
        for line, doc_id in self._ids() if repeated else ():
            if hash(doc_id) not in repeated:
                continue
            earlier = first_line.setdefault(doc_id, line)
            if earlier == line:
                continue
            if _keep_later(self.duplicate_ids, doc_id, self._where, earlier, line):
                dropped.add(earlier)
                first_line[doc_id] = line
            else:
                dropped.add(line)
        if dropped:
            log.warning("%s: %d records repeat an earlier document id; duplicate_ids=%s keeps the %s of each",
                        self._where, len(dropped), self.duplicate_ids, self.duplicate_ids)
        self._dropped, self._length = dropped, records - len(dropped)

    def __iter__(self) -> Iterator[Doc]:
        self.check_ids()  # normally done already, by __len__ in the main process, before workers start
        dropped = self._dropped or set()
        shard, shards = stream_shard(self.process_shard)
        skip = self.skip_ids
        for line, doc_id, text in self._records(shard, shards):
            if line in dropped or (skip is not None and doc_id in skip):
                continue
            if not text:
                log.warning("skipping document '%s' of %s: its text is empty", doc_id, self.source)
                continue
            yield Doc(doc_id, text)

    def __len__(self) -> int:
        """Number of records (found by the id check), so progress bars know their total."""
        self.check_ids()
        assert self._length is not None
        return self._length

    def texts(self, doc_ids: set[str]) -> dict[str, str]:
        """The texts of the given documents, found in one streaming pass (a repeated id as ``duplicate_ids`` says)."""
        wanted = ((line, doc_id, text) for line, doc_id, text in self._records() if doc_id in doc_ids)
        found, _ = _one_per_id(wanted, self.duplicate_ids, self._where, "document id")
        return {doc_id: text for doc_id, (_, text) in found.items()}


class QueryDataset(Dataset):
    """Queries from a BEIR folder (restricted to a qrels split), a ``.jsonl``/``.tsv`` file, or an ir_datasets id.

    ``qrels`` holds the relevance judgements when they are known (a BEIR split, an explicit file, ir_datasets).
    A repeated query id is refused naming both lines, unless ``duplicate_ids`` is ``"first"`` or ``"last"``
    (keep that record of each id), as for :class:`DocDataset`.
    """

    def __init__(self, source: str | os.PathLike[str], split: str | None = "test", qrels: str | os.PathLike[str] | None = None,
                 duplicate_ids: str = "error") -> None:
        self.source = str(source)
        self.duplicate_ids = _check_policy(duplicate_ids)
        self.split = split if Path(source).is_dir() else None
        self.qrels: Qrels | None = read_qrels(qrels) if qrels is not None else None
        path = Path(source)
        if path.is_dir():
            if self.qrels is None and split is not None:
                qrels_path = path / "qrels" / f"{split}.tsv"
                if not qrels_path.is_file():
                    raise DataFormatError(f"split '{split}' has no qrels file (set split to one that exists)", qrels_path)
                self.qrels = read_qrels(qrels_path)
            path = path / "queries.jsonl"
        if _is_path(source):
            rows, where = list(self._read(path)), str(path)
        else:
            pairs, known = irds.queries_and_qrels(self.source)
            rows, where = [(n, q, t) for n, (q, t) in enumerate(pairs, 1)], self.source
            self.qrels = self.qrels or known
        kept, repeats = _one_per_id(rows, self.duplicate_ids, where, "query id")
        if repeats:
            log.warning("%s: %d records repeat an earlier query id; duplicate_ids=%s keeps the %s of each",
                        where, repeats, self.duplicate_ids, self.duplicate_ids)
        pairs = [(query_id, text) for query_id, (_, text) in kept.items()]
        if self.qrels is not None:
            pairs = [(q, t) for q, t in pairs if q in self.qrels]
        self.queries: list[Query] = []
        for query_id, text in pairs:
            if not text.strip():
                log.warning("skipping query '%s' of %s: its text is empty", query_id, self.source)
                continue
            self.queries.append(Query(query_id, text.strip()))
        if not self.queries:
            raise DataFormatError("no queries left to use (check the file and the qrels split)", path)

    @staticmethod
    def _read(path: Path) -> Iterator[tuple[int, str, str]]:
        if path.suffix == ".tsv":
            for line, row in read_tsv(path, 2, header=("id", "text")):
                yield line, check_id(row[0].strip(), "query id", path, line), row[1]
        else:
            for line, record in read_jsonl(path):
                yield line, _id_field(record, path, line, "query id"), _field(record, _TEXT_KEYS, path, line, "text")


    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, index: int) -> Query:
        return self.queries[index]

    def texts(self) -> dict[str, str]:
        return {q.query_id: q.text for q in self.queries}


class RunDataset(Dataset):
    """Candidates of a first-stage run, with query and document texts, for re-ranking.

    Every run id must exist in the queries and the corpus: a run against the wrong collection is reported
    with the first unknown id, not re-ranked into nonsense. Build one from files here, or from objects
    already in memory with :meth:`from_run`.
    """

    def __init__(
        self,
        run: str | os.PathLike[str],
        queries: str | os.PathLike[str],
        corpus: str | os.PathLike[str],
        depth: int = 100,
        split: str | None = "test",
    ) -> None:
        self.run_path: Path | None = Path(run)
        self._build(Run.from_trec(run, depth=depth), QueryDataset(queries, split=split), DocDataset(corpus))

    @classmethod
    def from_run(cls, run: Run, queries: QueryDataset, corpus: DocDataset, depth: int = 100) -> RunDataset:
        dataset = cls.__new__(cls)
        dataset.run_path = None
        dataset._build(run.top_k(depth), queries, corpus)
        return dataset

    def _build(self, run: Run, queries: QueryDataset, corpus: DocDataset) -> None:
        self.run, self.queries, self.corpus, self.qrels = run, queries, corpus, queries.qrels
        query_texts = queries.texts()
        source = self.run_path or "the run"
        unknown_queries = [q for q in run if q not in query_texts]
        if unknown_queries:
            raise UnknownIdError(
                f"{source}: {len(unknown_queries)} query id(s) are not among the queries of {queries.source} "
                f"(first: '{unknown_queries[0]}'); pass the queries the run was made for."
            )
        wanted = {d for q in run for d in run.rankings[q]}
        judged = {d for docs in (self.qrels or {}).values() for d in docs}
        doc_texts = corpus.texts(wanted | judged)  # the same one pass finds which judged documents exist
        if self.qrels:
            warn_judged_outside(self.qrels, doc_texts, corpus.source)
        unknown_docs = sorted(wanted - set(doc_texts))
        if unknown_docs:
            raise UnknownIdError(
                f"{source}: {len(unknown_docs)} document id(s) are not in the corpus {corpus.source} "
                f"(first: '{unknown_docs[0]}'); pass the corpus the run was made for."
            )
        self.samples: list[RankSample] = []
        for query_id in run:
            ranked = run.ranked(query_id)
            self.samples.append(
                RankSample(query_id, query_texts[query_id], [d for d, _ in ranked], [doc_texts[d] for d, _ in ranked],
                           [s for _, s in ranked])
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> RankSample:
        return self.samples[index]




def dataset_name(dataset: Any, index: int) -> str:
    """A file-name-safe name for a dataloader's dataset: its source folder or file stem (``dataset-<index>`` else)."""
    source = str(getattr(dataset, "source", "") or getattr(dataset, "run_path", "") or f"dataset-{index}")
    path = Path(source)
    stem = path.name if path.is_dir() else path.stem
    split = getattr(dataset, "split", None)
    return (stem or f"dataset-{index}") + (f"-{split}" if split else "")


__all__ = ["DUPLICATE_IDS", "DocDataset", "DocIdSet", "QueryDataset", "RunDataset", "dataset_name", "join_title"]
