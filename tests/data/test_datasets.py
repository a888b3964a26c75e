"""Datasets: BEIR folders, JSONL/TSV files, skipping of empty texts, unknown ids in runs."""

from __future__ import annotations

import json
import logging

import pytest
from torch.utils.data import DataLoader

from boltir import DataFormatError, DocDataset, QueryDataset, Run, RunDataset, UnknownIdError
from boltir.data import collate


def test_doc_dataset_reads_beir_title_plus_text(tiny_beir):
    docs = list(DocDataset(tiny_beir))
    assert len(docs) == 6 and len(DocDataset(tiny_beir)) == 6
    assert docs[0].doc_id == "d1" and docs[0].text == "Berlin berlin is the capital of germany"
    assert docs[3].text == "genes in cells increase cancer risk"  # no title: text alone


def test_doc_dataset_tsv(tmp_path):
    path = tmp_path / "docs.tsv"
    path.write_text("id\ttext\ttitle\nd1\thello world\tGreeting\nd2\tbye\n")
    assert [(d.doc_id, d.text) for d in DocDataset(path)] == [("d1", "Greeting hello world"), ("d2", "bye")]


def test_empty_document_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "a", "text": "x"}) + "\n" + json.dumps({"_id": "b", "title": " ", "text": ""}) + "\n")
    with caplog.at_level(logging.WARNING):
        docs = list(DocDataset(path))
    assert [d.doc_id for d in docs] == ["a"]
    assert "skipping document 'b'" in caplog.text


def test_missing_corpus_and_bad_id_field(tmp_path):
    with pytest.raises(DataFormatError, match="corpus.jsonl: corpus file not found"):
        DocDataset(tmp_path)
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"name": "a", "text": "x"}) + "\n")
    with pytest.raises(DataFormatError, match=r"c.jsonl:1: no document id field"):
        list(DocDataset(path))


def test_doc_dataset_shards_across_workers(tiny_beir):
    loader = DataLoader(DocDataset(tiny_beir), batch_size=2, num_workers=2, collate_fn=collate)
    ids = sorted(i for batch in loader for i in batch.doc_ids)
    assert ids == ["d1", "d2", "d3", "d4", "d5", "d6"]


def test_query_dataset_split_and_qrels(tiny_beir):
    queries = QueryDataset(tiny_beir, split="test")
    assert [q.query_id for q in queries] == ["q1", "q2", "q3"]
    assert queries.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d6": 1}}
    with pytest.raises(DataFormatError, match="dev.tsv: split 'dev' has no qrels file"):
        QueryDataset(tiny_beir, split="dev")


def test_empty_query_skipped(tmp_path, caplog):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"_id": "1", "text": "ok"}) + "\n" + json.dumps({"_id": "2", "text": "  "}) + "\n")
    with caplog.at_level(logging.WARNING):
        assert [q.query_id for q in QueryDataset(path, split=None)] == ["1"]
    assert "skipping query '2'" in caplog.text


def test_run_dataset_and_unknown_ids(tiny_beir, tmp_path):
    run = Run({"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}})
    dataset = RunDataset.from_run(run, QueryDataset(tiny_beir), DocDataset(tiny_beir))
    assert dataset[0].doc_ids == ["d1", "d2"] and dataset[0].query == "what is the capital of germany"
    path = tmp_path / "bad.run"
    Run({"q1": {"d1": 1.0, "zz": 0.5}}).to_trec(path)
    with pytest.raises(UnknownIdError, match=r"bad.run: 1 document id\(s\) are not in the corpus .* \(first: 'zz'\)"):
        RunDataset(path, tiny_beir, tiny_beir)
    Run({"q9": {"d1": 1.0}}).to_trec(path)
    with pytest.raises(UnknownIdError, match="first: 'q9'"):
        RunDataset(path, tiny_beir, tiny_beir)


def test_unknown_ir_datasets_id_is_explained():
    pytest.importorskip("ir_datasets")
    with pytest.raises(DataFormatError, match="neither an existing path nor a known ir_datasets id"):
        list(DocDataset("no-such-collection/v1"))
