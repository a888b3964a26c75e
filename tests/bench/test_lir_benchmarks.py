"""The Lightning IR entry points (lir_indexing, lir_reranking, lir_training) need lightning-ir, which needs
transformers<5 and so runs in its own environment, never in boltir's (CI's). What they do before handing over to
lightning-ir is tested here: the files they write for its readers, the batching rule, and that each script loads
and parses its options in boltir's environment (lightning-ir is imported only once a row runs)."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import lir_indexing, lir_reranking, lir_training
from benchmarks.common import scifact_texts
from benchmarks.reranking import rerank_lists


def test_lir_indexing_corpus_is_one_tsv_line_per_document(tiny_beir, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    corpus = tiny_beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + json.dumps({"_id": "d7", "title": "Tabs", "text": "a\tb\nc"}) + "\n")
    path = lir_indexing._tsv(corpus, "tiny")
    lines = path.read_text().splitlines()
    ids, texts = scifact_texts(corpus)
    assert path.name == "tiny.tsv" and len(lines) == len(ids) == 7
    assert [line.split("\t") for line in lines] == [[i, t.replace("\t", " ").replace("\n", " ")] for i, t in zip(ids, texts)]
    assert lines[-1] == "d7\tTabs a b c"  # a tab or newline inside a text would start a new field or line


def test_lir_reranking_run_file_holds_every_pair_with_its_texts(tiny_train_beir, tmp_path):
    lists = rerank_lists(str(tiny_train_beir), str(tiny_train_beir / "first-stage.run"), depth=4)
    path = lir_reranking._run_file(lists, tmp_path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 12 and {r["query_id"] for r in records} == {"q1", "q2", "q3"}
    first = [r for r in records if r["query_id"] == "q1"]
    assert [r["doc_id"] for r in first] == ["d2", "d1", "d3", "d4"] and [r["rank"] for r in first] == [1, 2, 3, 4]
    assert [r["score"] for r in first] == sorted((r["score"] for r in first), reverse=True)  # the run's order
    assert first[1]["text"].startswith("Berlin berlin") and first[0]["query"] == "what is the capital of germany"


@pytest.mark.parametrize(("pairs", "depth", "queries"), [(256, 100, 2), (64, 100, 1), (400, 100, 4), (8, 4, 2)])
def test_lir_reranking_batches_whole_queries(pairs, depth, queries):
    import argparse

    assert lir_reranking._queries_per_batch(argparse.Namespace(depth=depth), pairs) == queries


def test_lir_training_run_has_one_row_per_sample(tiny_train_beir, tmp_path):
    path = lir_training.train_run(str(tiny_train_beir), 7, tmp_path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["query_id"] for r in records] == [f"q{i}" for i in range(7)]  # distinct: one sample per row
    assert [r["doc_id"] for r in records[:4]] == ["d1", "d3", "d6", "d1"]  # the judged documents, cycled
    assert all(r["relevance"] == 1 and r["rank"] == 1 and r["text"] for r in records)
    assert records[0]["query"] == "what is the capital of germany" and records[0]["text"].startswith("Berlin")


@pytest.mark.parametrize("script", [lir_indexing, lir_reranking, lir_training])
def test_lir_scripts_parse_their_options_without_lightning_ir(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script.__name__, "--help"])
    with pytest.raises(SystemExit) as done:
        script.main()
    assert done.value.code == 0 and "--device" in capsys.readouterr().out
