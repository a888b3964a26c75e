"""Datasets: BEIR folders, JSONL/TSV files, skipping of empty texts, unknown ids in runs."""

from __future__ import annotations

import collections
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from boltir import ConfigError, DataFormatError, DocDataset, QueryDataset, Run, RunDataset, UnknownIdError
from boltir.data import collate
from boltir.data import ir_datasets as irds


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


# -- ids (#16 items 1, 2, 4) -----------------------------------------------------------------------------------
def _corpus(path, ids_and_texts):
    path.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in ids_and_texts))
    return path


def test_duplicate_document_id_is_refused_naming_it_and_both_lines(tmp_path):
    path = _corpus(tmp_path / "corpus.jsonl", [("a", "x"), ("b", "y"), ("c", "z"), ("b", "w")])
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:4: document id 'b' repeats the one at .*corpus.jsonl:2"):
        len(DocDataset(path))  # before any document is encoded: the progress bar's count already fails
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:4: document id 'b'"):
        list(DocDataset(path))
    tsv = tmp_path / "docs.tsv"
    tsv.write_text("id\ttext\nd1\tx\nd2\ty\nd1\tz\n")
    with pytest.raises(DataFormatError, match=r"docs.tsv:4: document id 'd1' repeats the one at .*docs.tsv:2"):
        list(DocDataset(tsv))


@pytest.mark.parametrize("policy, kept", [("first", ["a:x", "b:y", "c:z"]), ("last", ["a:x", "c:z", "b:v"])])
def test_duplicate_ids_first_or_last_keeps_one_record_per_id(tmp_path, caplog, policy, kept):
    path = _corpus(tmp_path / "corpus.jsonl", [("a", "x"), ("b", "y"), ("c", "z"), ("b", "w"), ("b", "v")])
    dataset = DocDataset(path, duplicate_ids=policy)
    with caplog.at_level(logging.WARNING, logger="boltir"):
        assert len(dataset) == 3
    assert "2 records repeat an earlier document id" in caplog.text
    assert [f"{d.doc_id}:{d.text}" for d in dataset] == kept
    assert dataset.texts({"b"}) == {"b": kept[1 if policy == "first" else 2][2:]}
    loader = DataLoader(DocDataset(path, duplicate_ids=policy), batch_size=1, num_workers=2, collate_fn=collate)
    assert sorted(i for batch in loader for i in batch.doc_ids) == ["a", "b", "c"]  # workers drop the same records


def _queries(path, ids_and_texts):
    path.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in ids_and_texts))
    return path


def test_duplicate_query_id_is_refused_naming_it_and_both_lines(tmp_path):
    path = _queries(tmp_path / "queries.jsonl", [("q1", "x"), ("q2", "y"), ("q1", "z")])
    with pytest.raises(DataFormatError, match=r"queries.jsonl:3: query id 'q1' repeats the one at .*queries.jsonl:1"):
        QueryDataset(path)
    tsv = tmp_path / "queries.tsv"
    tsv.write_text("id\ttext\nq1\tx\nq2\ty\nq2\tz\n")
    with pytest.raises(DataFormatError, match=r"queries.tsv:4: query id 'q2' repeats the one at .*queries.tsv:3"):
        QueryDataset(tsv)


@pytest.mark.parametrize("policy, kept", [("first", ["q1:x", "q2:y"]), ("last", ["q1:w", "q2:y"])])
def test_duplicate_query_ids_first_or_last_keeps_one_record_per_id(tmp_path, caplog, policy, kept):
    path = _queries(tmp_path / "queries.jsonl", [("q1", "x"), ("q2", "y"), ("q1", "z"), ("q1", "w")])
    with caplog.at_level(logging.WARNING, logger="boltir"):
        dataset = QueryDataset(path, duplicate_ids=policy)
    assert "2 records repeat an earlier query id" in caplog.text
    assert [f"{q.query_id}:{q.text}" for q in dataset] == kept
    with pytest.raises(ConfigError, match=r"duplicate_ids='keep' does not exist"):
        QueryDataset(path, duplicate_ids="keep")


def test_duplicate_ids_option_is_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"duplicate_ids='keep' does not exist; choose one of \['error', 'first', 'last'\]"):
        DocDataset(_corpus(tmp_path / "c.jsonl", [("a", "x")]), duplicate_ids="keep")


@pytest.mark.parametrize("bad", ["a b", "a\nb", "a\tb", "", " a"])
def test_document_and_query_ids_are_checked_when_read(tmp_path, bad):
    corpus = _corpus(tmp_path / "corpus.jsonl", [("ok", "x"), (bad, "y")])
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: the document id .*(whitespace|empty)"):
        len(DocDataset(corpus))
    queries = _corpus(tmp_path / "queries.jsonl", [("q1", "x"), (bad, "y")])
    with pytest.raises(DataFormatError, match=r"queries.jsonl:2: the query id .*(whitespace|empty)"):
        QueryDataset(queries, split=None)


@pytest.mark.parametrize("bad", ["a b", "", "a\u00a0b"])
def test_tsv_ids_are_checked_when_read(tmp_path, bad):
    tsv = tmp_path / "docs.tsv"
    tsv.write_text(f"id\ttext\nd1\tx\n{bad}\ty\n")
    with pytest.raises(DataFormatError, match=r"docs.tsv:3: the document id"):
        list(DocDataset(tsv))
    queries = tmp_path / "queries.tsv"
    queries.write_text(f"q1\tx\n{bad}\ty\n")
    with pytest.raises(DataFormatError, match=r"queries.tsv:2: the query id"):
        QueryDataset(queries, split=None)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=6),
                min_size=1, max_size=6, unique=True))
def test_any_valid_ids_read_back_unchanged(tmp_path_factory, ids):
    path = _corpus(tmp_path_factory.mktemp("c") / "corpus.jsonl", [(i, "text") for i in ids])
    assert [d.doc_id for d in DocDataset(path)] == ids


class _FakeIrDataset:
    """What ir_datasets returns for a collection: named tuples of docs, queries and qrels."""

    def __init__(self, doc_ids, query_ids):
        self.doc_ids, self.query_ids = doc_ids, query_ids

    def docs_iter(self):
        Doc = collections.namedtuple("Doc", ["doc_id", "text"])
        return (Doc(i, "text") for i in self.doc_ids)

    def docs_count(self):
        return len(self.doc_ids)

    def queries_iter(self):
        Query = collections.namedtuple("Query", ["query_id", "text"])
        return (Query(i, "query") for i in self.query_ids)

    def has_qrels(self):
        return False


def test_ir_datasets_ids_are_checked_and_repeats_refused(monkeypatch):
    monkeypatch.setattr(irds, "load", lambda name: _FakeIrDataset(["d1", "d 2"], ["q1", "q\t2"]))
    with pytest.raises(DataFormatError, match=r"fake/v1:2: the document id 'd 2' holds whitespace"):
        len(DocDataset("fake/v1"))
    with pytest.raises(DataFormatError, match=r"fake/v1:2: the query id 'q\\t2' holds whitespace"):
        QueryDataset("fake/v1")
    monkeypatch.setattr(irds, "load", lambda name: _FakeIrDataset(["d1", "d2", "d1"], ["q1"]))
    with pytest.raises(DataFormatError, match=r"fake/v1:3: document id 'd1' repeats the one at fake/v1:1"):
        list(DocDataset("fake/v1"))


def test_judged_documents_outside_the_corpus_warn_once_with_a_count(tiny_beir, tmp_path, caplog):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\td1\t1\nq1\tgone1\t1\nq2\tgone2\t1\nq2\td3\t1\n")
    queries = QueryDataset(tiny_beir, qrels=qrels)
    run = Run({"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}})
    with caplog.at_level(logging.WARNING, logger="boltir"):
        dataset = RunDataset.from_run(run, queries, DocDataset(tiny_beir))
    warnings = [r for r in caplog.records if "not in" in r.getMessage()]
    assert len(warnings) == 1 and "judge 2 document(s) that are not in" in warnings[0].getMessage()
    assert "first: 'gone1'" in warnings[0].getMessage()
    assert len(dataset) == 2  # trec_eval's behaviour stays: they count as relevant, never retrieved



_LAYOUTS = {  # how a record names its id: the fast "_id"-first path, and lines that need the JSON parse
    "leading": lambda i, t: json.dumps({"_id": i, "text": t}),
    "later": lambda i, t: json.dumps({"text": t, "_id": i}),
    "other_key": lambda i, t: json.dumps({"id": i, "text": t}),
    "escaped": lambda i, t: json.dumps({"_id": i, "text": t}).replace(f'"{i}"', '"' + "".join(f"\\u{ord(c):04x}" for c in i) + '"', 1),
    "spaced": lambda i, t: '  {  "_id" :"' + i + '",  "text": ' + json.dumps(t) + "}",
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d-1", "e_2"]), st.sampled_from(sorted(_LAYOUTS))), min_size=1, max_size=12),
       st.sampled_from(["error", "first", "last"]))
def test_id_check_finds_every_repeat_whatever_the_line_layout(tmp_path_factory, records, policy):
    """The hash-based id check (fast path for "_id"-first lines) keeps what one dict of ids over parsed records keeps."""
    path = tmp_path_factory.mktemp("ids") / "corpus.jsonl"
    path.write_text("".join(_LAYOUTS[layout](doc_id, f"text {n}") + "\n" for n, (doc_id, layout) in enumerate(records)))
    where: dict[str, int] = {}
    for n, (doc_id, _) in enumerate(records):
        if policy != "first" or doc_id not in where:
            where[doc_id] = n
    if policy == "error" and len(where) < len(records):
        with pytest.raises(DataFormatError, match="repeats the one at"):
            len(DocDataset(path, duplicate_ids=policy))
        return
    dataset = DocDataset(path, duplicate_ids=policy)
    assert len(dataset) == len(where)
    assert sorted((d.doc_id, d.text) for d in dataset) == sorted((i, f"text {n}") for i, n in where.items())


def test_a_line_naming_its_id_twice_takes_the_id_json_takes(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x", "_id": "b"}\n{"_id": "b", "text": "y"}\n')
    with pytest.raises(DataFormatError, match="document id 'b' repeats"):  # json.loads keeps the later "_id"
        len(DocDataset(path))
