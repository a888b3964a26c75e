"""File readers: bad lines are reported with file and line; runs and qrels round-trip."""

from __future__ import annotations

import gzip
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import DataFormatError, Run, read_qrels
from boltir.data.formats import check_id, read_jsonl, read_tsv


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n\n{"_id": "b", "text": \n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:3: not valid JSON"):
        list(read_jsonl(path))


def test_jsonl_missing_field_and_non_object(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"_id": "a"}\n')
    with pytest.raises(DataFormatError, match=r"q.jsonl:1: missing field\(s\) \['text'\]"):
        list(read_jsonl(path, required=("_id", "text")))
    path.write_text("[1, 2]\n")
    with pytest.raises(DataFormatError, match="q.jsonl:1: expected a JSON object"):
        list(read_jsonl(path))


def test_tsv_short_row_and_missing_file(tmp_path):
    path = tmp_path / "docs.tsv"
    path.write_text("id\ttext\nd1\thello\nd2\n")
    with pytest.raises(DataFormatError, match=r"docs.tsv:3: expected at least 2"):
        list(read_tsv(path, 2, header=("id", "text")))
    with pytest.raises(DataFormatError, match="nope.tsv: file not found"):
        list(read_tsv(tmp_path / "nope.tsv", 2))


def test_trec_run_bad_lines(tmp_path):
    path = tmp_path / "bad.run"
    path.write_text("q1 Q0 d1 1 2.5 x\nq1 Q0 d2 2 x\n")
    with pytest.raises(DataFormatError, match=r"bad.run:2: expected 6"):
        Run.from_trec(path)
    path.write_text("q1 Q0 d1 1 high x\n")
    with pytest.raises(DataFormatError, match=r"bad.run:1: score 'high'"):
        Run.from_trec(path)
    path.write_text("\n")
    with pytest.raises(DataFormatError, match="no results"):
        Run.from_trec(path)


def test_qrels_beir_and_trec(tmp_path):
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 1\nq1 0 d2 2\n")
    assert read_qrels(beir) == read_qrels(trec) == {"q1": {"d1": 1, "d2": 2}}
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:2: relevance 'yes'"):
        read_qrels(beir)


ids = st.text(alphabet="abcdefghij0123456789_-", min_size=1, max_size=8)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(ids, st.dictionaries(ids, st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=6), min_size=1, max_size=5))
def test_run_round_trips_through_trec(tmp_path_factory, rankings):
    path = tmp_path_factory.mktemp("runs") / "x.run"
    run = Run(rankings, name="sys")
    run.to_trec(path)
    back = Run.from_trec(path)
    assert back.query_ids == run.query_ids
    for qid in run:
        assert [d for d, _ in back[qid]] == [d for d, _ in run[qid]]
        assert [s for _, s in back[qid]] == pytest.approx([s for _, s in run[qid]], abs=1e-6, rel=1e-6)
    assert back.name == "sys"


def test_run_top_k_and_ties_are_stable():
    run = Run({"q": {"b": 1.0, "a": 1.0, "c": 3.0}})
    assert [d for d, _ in run["q"]] == ["c", "a", "b"]
    assert [d for d, _ in run.top_k(2)["q"]] == ["c", "a"]


def test_jsonl_reader_handles_unicode(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"_id": "é", "text": "naïve ☃"}, ensure_ascii=False) + "\n")
    assert list(read_jsonl(path)) == [(1, {"_id": "é", "text": "naïve ☃"})]


# -- input checks (#16 items 2, 3, 10) -------------------------------------------------------------------------
WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"]
id_texts = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(id_texts)
def test_check_id_accepts_every_id_without_whitespace(value):
    assert check_id(value, "document id", "corpus.jsonl", 3) == value


@settings(max_examples=100, deadline=None)
@given(id_texts, st.sampled_from(WHITESPACE), st.integers(0, 12))
def test_check_id_refuses_whitespace_anywhere_naming_file_and_line(value, space, at):
    bad = value[:at] + space + value[at:]
    with pytest.raises(DataFormatError, match=r"^corpus.jsonl:3: the document id .* holds whitespace") as caught:
        check_id(bad, "document id", "corpus.jsonl", 3)
    assert "\n" not in str(caught.value).replace("\\n", "")  # one line, even for an id holding a newline


def test_check_id_refuses_empty():
    with pytest.raises(DataFormatError, match=r"^q.tsv:2: the query id is empty"):
        check_id("", "query id", "q.tsv", 2)


@pytest.mark.parametrize("score", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_trec_run_refuses_nan_and_infinite_scores(tmp_path, score):
    path = tmp_path / "x.run"
    path.write_text(f"q1 Q0 d1 1 2.5 sys\nq1 Q0 d2 2 {score} sys\n")
    with pytest.raises(DataFormatError, match=rf"x.run:2: score '{score}' is not a finite number"):
        Run.from_trec(path)


@settings(max_examples=50, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_trec_run_score_parser_keeps_finite_refuses_the_rest(tmp_path_factory, score):
    path = tmp_path_factory.mktemp("runs") / "x.run"
    path.write_text(f"q1 Q0 d1 1 {score!r} sys\n")
    if math.isfinite(score):
        assert Run.from_trec(path)["q1"] == [("d1", score)]
    else:
        with pytest.raises(DataFormatError, match=r"x.run:1: score .* is not a finite number"):
            Run.from_trec(path)


def test_qrels_tsv_id_with_a_space_names_file_and_line(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td 2\t1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:3: the document id 'd 2' holds whitespace"):
        read_qrels(path)


def test_writing_a_run_with_a_space_in_an_id_is_refused_before_writing(tmp_path):
    path = tmp_path / "x.run"
    with pytest.raises(DataFormatError, match=r"x.run: the document id 'd 1' holds whitespace"):
        Run({"q1": {"d 1": 1.0}}).to_trec(path)
    assert not path.exists()


BAD_BYTES = b"\xff\xfe"


@pytest.mark.parametrize(
    "name, good, read",
    [
        ("corpus.jsonl", b'{"_id": "a", "text": "x"}\n', lambda p: list(read_jsonl(p))),
        ("docs.tsv", b"a\tx\n", lambda p: list(read_tsv(p, 2))),
        ("x.run", b"q1 Q0 d1 1 2.5 sys\n", Run.from_trec),
        ("qrels.tsv", b"q1\td1\t1\n", read_qrels),
        ("corpus.jsonl.gz", b'{"_id": "a", "text": "x"}\n', lambda p: list(read_jsonl(p))),
    ],
)
def test_non_utf8_bytes_name_file_line_and_byte_offset(tmp_path, name, good, read):
    data = good + good + good[:2] + BAD_BYTES + good[2:]
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    offset = data.index(BAD_BYTES)
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}:3: byte {offset} of the file \(column \d+ of the line\) is not valid UTF-8") as caught:
        read(path)
    assert "\n" not in str(caught.value)
