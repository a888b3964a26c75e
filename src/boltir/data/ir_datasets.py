"""Named collections through ir_datasets (an optional extra), with one clear error when they cannot be had."""

from __future__ import annotations

from typing import Any

from ..errors import DataFormatError, require
from .formats import check_id


def load(dataset_id: str) -> Any:
    ir_datasets = require("ir_datasets", "ir_datasets", f"loading the collection '{dataset_id}'", extra="datasets")
    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        raise DataFormatError(
            f"'{dataset_id}' is neither an existing path nor a known ir_datasets id: pass a BEIR folder or a file path."
        ) from None


def unavailable(dataset_id: str, exc: Exception) -> DataFormatError:
    return DataFormatError(
        f"ir_datasets could not provide '{dataset_id}' ({type(exc).__name__}: {exc}); it downloads data on first use, "
        "so without network pass a local BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or file path instead."
    )


def iter_docs(dataset_id: str):
    """``(record number, doc id, title, text)`` of every document, numbered from 1 like the lines of a file."""
    dataset = load(dataset_id)
    try:
        for number, doc in enumerate(dataset.docs_iter(), start=1):
            fields = doc._asdict()
            text = fields.get("text") or fields.get("body") or fields.get("passage") or ""
            yield number, check_id(str(doc.doc_id), "document id", dataset_id, number), str(fields.get("title") or ""), str(text)
    except (OSError, ConnectionError, RuntimeError) as exc:
        raise unavailable(dataset_id, exc) from exc


def queries_and_qrels(dataset_id: str) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]] | None]:
    dataset = load(dataset_id)
    try:
        queries = [
            (check_id(str(q.query_id), "query id", dataset_id, number), getattr(q, "text", None) or q[1])
            for number, q in enumerate(dataset.queries_iter(), start=1)
        ]
        qrels = None
        if dataset.has_qrels():
            qrels = {}
            for number, qrel in enumerate(dataset.qrels_iter(), start=1):
                where = f"{dataset_id} qrels"
                doc_id = check_id(str(qrel.doc_id), "document id", where, number)
                qrels.setdefault(check_id(str(qrel.query_id), "query id", where, number), {})[doc_id] = int(qrel.relevance)
    except (OSError, ConnectionError, RuntimeError) as exc:
        raise unavailable(dataset_id, exc) from exc
    return queries, qrels
