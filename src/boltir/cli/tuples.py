"""``boltir tuples``: training tuples (JSONL for ``TupleDataset``) from a BEIR folder, a qrels split and a run.

Positives come from the qrels, hard negatives from a rank window of the run (judged-relevant documents left
out), optional teacher scores from another run; the lists are those :class:`~boltir.RunTupleDataset` samples
from, written out so they can be read, shared and trained on with ``TupleDataset("train.jsonl")``.
"""

from __future__ import annotations

import argparse

from ..data.tuples import RunTupleDataset
from ..errors import ConfigError


def _window(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start or 0), int(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rank window START:END (0-based, END excluded), e.g. 0:30") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    parser.add_argument("--run", required=True, help="TREC run over the split's queries (e.g. from `boltir search`)")
    parser.add_argument("--out", required=True, help="JSONL file to write (replaced atomically)")
    parser.add_argument("--split", default="train", help="qrels split whose queries and positives are used (default: train)")
    parser.add_argument("--window", type=_window, default=(0, 30), metavar="START:END",
                        help="ranks the negatives come from, 0-based, END excluded (default: 0:30 = ranks 1-30)")
    parser.add_argument("--negatives", type=int, default=None, metavar="N",
                        help="keep at most N negatives per query, best-ranked first (default: the whole window)")
    parser.add_argument("--teacher-run", default=None, metavar="RUN",
                        help="a run whose scores become every document's target (distillation)")


def run(args: argparse.Namespace) -> int:
    if args.negatives is not None and args.negatives < 0:
        raise ConfigError(f"--negatives must be >= 0, got {args.negatives}.")
    tuples = RunTupleDataset(
        args.run, args.data, args.data, split=args.split, list_size=1, rank_window=args.window, teacher_run=args.teacher_run
    )
    path = tuples.write_jsonl(args.out, negatives=args.negatives)
    negatives = sum(min(len(r.negatives), args.negatives if args.negatives is not None else len(r.negatives)) for r in tuples.records)
    print(f"wrote {len(tuples.records)} queries ({negatives} negatives) to {path}", flush=True)
    return 0
