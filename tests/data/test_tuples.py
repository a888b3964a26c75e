"""Training tuples: JSONL files, lists from a first-stage run, mixing, sampling, batching and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import ConfigError, DataFormatError, MixedTupleDataset, RunTupleDataset, TupleDataset, UnknownIdError
from boltir.data import Run, TrainBatch, TrainSample, collate
from boltir.data.tuples import TrainingTuples, TupleRecord, _sample
from boltir.errors import BoltirError


def write_jsonl(path, records) -> str:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def test_jsonl_tuples_give_fixed_size_lists_positive_first(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        {"query": "capital of germany", "pos": ["berlin is the capital"], "neg": ["paris", "tides", "genes", "mice"]},
        {"query_id": "q9", "query": "tides", "positives": [{"id": "d3", "text": "the moon"}], "negatives": ["berlin"]},
    ])
    dataset = TupleDataset(path, list_size=3)
    first, second = dataset[0], dataset[1]
    assert isinstance(first, TrainSample) and len(first.docs) == 3
    assert first.docs[0] == "berlin is the capital" and first.targets == [1.0, 0.0, 0.0]
    assert len(set(first.docs[1:])) == 2  # enough negatives: no repeats
    assert second.query_id == "q9" and second.doc_ids[0] == "d3" and second.docs[1:] == ["berlin", "berlin"]  # repeated


def test_sampling_depends_on_seed_and_epoch_only(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "q", "pos": ["p"], "neg": [f"n{i}" for i in range(20)]}])
    dataset = TupleDataset(path, list_size=4, seed=1)
    again = TupleDataset(path, list_size=4, seed=1)
    assert dataset[0] == again[0]
    epochs = set()
    for epoch in range(5):
        dataset.set_epoch(epoch)
        epochs.add(tuple(dataset[0].docs))
    assert len(epochs) > 1  # negatives are re-sampled each epoch


@given(st.lists(st.integers(), min_size=1, max_size=10), st.integers(min_value=0, max_value=15), st.integers())
@settings(max_examples=50, deadline=None)
def test_sample_has_k_items_drawn_from_the_pool(pool, k, seed):
    import random

    items = [(str(i), str(v), 0.0) for i, v in enumerate(pool)]
    picked = _sample(items, k, random.Random(seed))
    assert len(picked) == k and all(p in items for p in picked)
    if k <= len(items):
        assert len(set(picked)) == k


def test_teacher_scores_become_targets(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "q", "pos": ["p"], "neg": ["a", "b"], "scores": [9.0, 2.0, 1.0]}])
    sample = TupleDataset(path, list_size=3)[0]
    assert dict(zip(sample.docs, sample.targets)) == {"p": 9.0, "a": 2.0, "b": 1.0}


def test_ids_are_looked_up_in_corpus_and_queries(tmp_path, tiny_beir):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query_id": "q1", "pos": ["d1"], "neg": ["d2"]}])
    sample = TupleDataset(path, list_size=2, corpus=tiny_beir, queries=tiny_beir / "queries.jsonl")[0]
    assert sample.query == "what is the capital of germany"
    assert sample.doc_ids == ["d1", "d2"] and sample.docs[0] == "Berlin berlin is the capital of germany"
    missing = write_jsonl(tmp_path / "m.jsonl", [{"query": "x", "pos": ["d1"], "neg": ["nope"]}])
    with pytest.raises(UnknownIdError, match="nope"):
        TupleDataset(missing, corpus=tiny_beir)


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"query": "q", "pos": [], "neg": ["a"]}, r"t.jsonl:2: .*no positive"),
        ({"query": "q", "neg": ["a"]}, r"t.jsonl:2: .*no positive"),
        ({"query": "q", "pos": ["p"], "neg": ["a"], "scores": [1.0]}, r"t.jsonl:2: teacher scores .* = 2\), got 1"),
        ({"query": "q", "pos": ["p"], "neg": ["a"], "scores": [1.0, "x"]}, r"t.jsonl:2: teacher scores must be numbers"),
        ({"pos": ["p"], "neg": ["a"]}, r"t.jsonl:2: no 'query'"),
        ({"query": "q", "pos": "p", "neg": ["a"]}, r"t.jsonl:2: 'positives' must be a list"),
    ],
)
def test_bad_tuples_are_named_by_line(tmp_path, record, match):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "fine", "pos": ["p"], "neg": ["n"]}, record])
    with pytest.raises(DataFormatError, match=match):
        TupleDataset(path, list_size=2)


def test_scores_on_some_lines_only_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        {"query": "a", "pos": ["p"], "neg": ["n"], "scores": [1, 0]},
        {"query": "b", "pos": ["p"], "neg": ["n"]},
    ])
    with pytest.raises(DataFormatError, match="t.jsonl:2: has no teacher scores"):
        TupleDataset(path, list_size=2)


def test_list_size_needs_negatives_and_must_be_positive(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "q", "pos": ["p"]}])
    assert TupleDataset(path, list_size=1)[0].docs == ["p"]  # in-batch negatives only
    with pytest.raises(DataFormatError, match="no negatives, but list_size=2"):
        TupleDataset(path, list_size=2)
    with pytest.raises(ConfigError, match="list_size"):
        TupleDataset(path, list_size=0)


def test_run_tuples_take_positives_from_qrels_and_negatives_from_the_window(tiny_train_beir):
    dataset = RunTupleDataset(
        tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="train", list_size=3, rank_window=(0, 3)
    )
    assert len(dataset) == 3
    by_query = {dataset[i].query_id: dataset[i] for i in range(3)}
    q1 = by_query["q1"]
    assert q1.doc_ids[0] == "d1" and q1.targets == [1.0, 0.0, 0.0]
    assert set(q1.doc_ids[1:]) == {"d2", "d3"}  # ranks 1-3 are d2 d1 d3; the relevant d1 is no negative
    q3 = by_query["q3"]  # its relevant d6 is rank 1: negatives d5, d4
    assert q3.doc_ids[0] == "d6" and set(q3.doc_ids[1:]) == {"d5", "d4"}


def test_run_tuples_positive_outside_the_window_gets_its_text(tiny_train_beir):
    dataset = RunTupleDataset(
        tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="train", list_size=2, rank_window=(3, 6)
    )
    q2 = next(dataset[i] for i in range(3) if dataset[i].query_id == "q2")  # relevant d3 is rank 3
    assert q2.doc_ids[0] == "d3" and q2.docs[0] == "Tides the moon causes the ocean tide"
    assert q2.doc_ids[1] in {"d4", "d5", "d6"}


def test_run_tuples_distil_the_run_scores(tiny_train_beir):
    dataset = RunTupleDataset(
        tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="train", list_size=4, targets="run"
    )
    sample = dataset[0]
    assert sample.targets[0] == 9.0 and all(t < 9.0 for t in sample.targets[1:])  # the run's top document first


def test_run_tuples_bad_options(tiny_train_beir):
    run = tiny_train_beir / "first-stage.run"
    with pytest.raises(ConfigError, match="rank_window"):
        RunTupleDataset(run, tiny_train_beir, tiny_train_beir, rank_window=(5, 2))
    with pytest.raises(ConfigError, match="targets"):
        RunTupleDataset(run, tiny_train_beir, tiny_train_beir, targets="labels")


def _records(n: int, tag: str) -> list[TupleRecord]:
    return [TupleRecord(f"{tag}{i}", tag, [(f"{tag}p", "p", 1.0)], [(f"{tag}n", "n", 0.0)], "test") for i in range(n)]


def test_mixing_follows_the_weights():
    a, b = TrainingTuples(_records(10, "a"), list_size=2), TrainingTuples(_records(10, "b"), list_size=2)
    mixed = MixedTupleDataset([a, b], weights=[3, 1], length=400)
    drawn = [mixed[i].query for i in range(len(mixed))]
    assert 0.65 < drawn.count("a") / len(drawn) < 0.85
    assert [mixed[i].query for i in range(20)] == drawn[:20]  # deterministic
    only_b = MixedTupleDataset([a, b], weights=[0, 1])
    assert {only_b[i].query for i in range(len(only_b))} == {"b"} and len(only_b) == 20


def test_mixing_bad_options():
    a, c = TrainingTuples(_records(2, "a"), list_size=2), TrainingTuples(_records(2, "c"), list_size=1)
    with pytest.raises(ConfigError, match="weights"):
        MixedTupleDataset([a], weights=[1, 2])
    with pytest.raises(ConfigError, match="weights"):
        MixedTupleDataset([a], weights=[0])
    with pytest.raises(ConfigError, match="list_size"):
        MixedTupleDataset([a, c])


def test_collate_stacks_targets_and_refuses_ragged_lists():
    samples = [TrainSample("q1", "a", ["d1", "d2"], ["x", "y"], [1.0, 0.0]), TrainSample("q2", "b", ["d3", "d4"], ["z", "w"], [2.0, 0.5])]
    batch = collate(samples)
    assert isinstance(batch, TrainBatch) and batch.docs == [["x", "y"], ["z", "w"]]
    torch.testing.assert_close(batch.targets, torch.tensor([[1.0, 0.0], [2.0, 0.5]]))
    with pytest.raises(BoltirError, match="one length"):
        collate([samples[0], TrainSample("q3", "c", ["d5"], ["v"], [1.0])])


def _same_lists(a: TrainingTuples, b: TrainingTuples) -> bool:
    return all(a[i] == b[i] for i in range(len(a))) and len(a) == len(b)


def test_run_tuples_written_as_jsonl_read_back_as_the_same_lists(tiny_train_beir, tmp_path):
    run = tiny_train_beir / "first-stage.run"
    from_run = RunTupleDataset(run, tiny_train_beir, tiny_train_beir, list_size=3, rank_window=(0, 4), seed=5)
    from_file = TupleDataset(from_run.write_jsonl(tmp_path / "train.jsonl"), list_size=3, seed=5)
    assert _same_lists(from_run, from_file)
    assert "scores" not in (tmp_path / "train.jsonl").read_text()  # plain labels need no scores


def test_written_tuples_keep_the_first_negatives_and_the_teacher_scores(tiny_train_beir, tmp_path):
    run = tiny_train_beir / "first-stage.run"
    tuples = RunTupleDataset(run, tiny_train_beir, tiny_train_beir, list_size=2, rank_window=(0, 6), teacher_run=run)
    lines = [json.loads(line) for line in tuples.write_jsonl(tmp_path / "t.jsonl", negatives=1).read_text().splitlines()]
    teacher = Run.from_trec(run)
    for line in lines:
        ranked = [d for d, _ in teacher.ranked(line["query_id"]) if d not in {p["id"] for p in line["pos"]}]
        assert [n["id"] for n in line["neg"]] == ranked[:1]  # the best-ranked negative of the window
        docs = [d["id"] for d in line["pos"] + line["neg"]]
        assert line["scores"] == [teacher.rankings[line["query_id"]][d] for d in docs]
    assert TupleDataset(tmp_path / "t.jsonl", list_size=2)[0].targets == [lines[0]["scores"][0], lines[0]["scores"][1]]


def test_teacher_run_must_cover_the_training_queries(tiny_train_beir, tmp_path):
    teacher = tmp_path / "teacher.run"
    teacher.write_text("q1 Q0 d1 1 3.0 t\n")
    with pytest.raises(UnknownIdError, match="teacher run has no scores for 2"):
        RunTupleDataset(tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, teacher_run=teacher)
