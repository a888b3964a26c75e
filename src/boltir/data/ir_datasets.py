"""Named collections through ir_datasets (an optional extra), with one clear error when they cannot be had."""

from __future__ import annotations

from typing import Any

from ..errors import DataFormatError, require


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
    dataset = load(dataset_id)
    try:
        for doc in dataset.docs_iter():
            fields = doc._asdict()
            text = fields.get("text") or fields.get("body") or fields.get("passage") or ""
            yield doc.doc_id, str(fields.get("title") or ""), str(text)
    except (OSError, ConnectionError, RuntimeError) as exc:
        raise unavailable(dataset_id, exc) from exc


def queries_and_qrels(dataset_id: str) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]] | None]:
    dataset = load(dataset_id)
    try:
        queries = [(q.query_id, getattr(q, "text", None) or q[1]) for q in dataset.queries_iter()]
        qrels = None
        if dataset.has_qrels():
            qrels = {}
            for qrel in dataset.qrels_iter():
                qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
    except (OSError, ConnectionError, RuntimeError) as exc:
        raise unavailable(dataset_id, exc) from exc
    return queries, qrels
