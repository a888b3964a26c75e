"""The CLI end to end on a tiny model: index, search (run + metrics), and clear errors for bad configs."""

from __future__ import annotations

import json

import pytest
import yaml

from boltir import Run
from boltir.cli import main
from boltir.index import read_manifest
from boltir.index.storage import resolve_index


def _config(tmp_path, model_dir, datasets, **extra):
    config = {
        "model": {"class_path": "boltir.BiEncoderModule", "init_args": {"model_name_or_path": str(model_dir)}},
        "data": {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": datasets, "inference_batch_size": 2}},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
        **extra,
    }
    path = tmp_path / f"config-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_index_then_search_writes_run_and_metrics(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    index_dir, run_dir = tmp_path / "index", tmp_path / "runs"
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]
    main(["index", "--config", str(_config(tmp_path, tiny_bert_dir, docs, index_dir=str(index_dir)))])
    manifest = read_manifest(index_dir)
    assert manifest["count"] == 6 and manifest["engine"] == "faiss" and manifest["dim"] == 32

    queries = [{"class_path": "boltir.QueryDataset", "init_args": {"source": str(tiny_beir), "split": "test"}}]
    config = _config(tmp_path, tiny_bert_dir, queries, index_dir=str(index_dir), run_dir=str(run_dir), k=3)
    main(["search", "--config", str(config), "--k", "4"])  # the command line overrides the file
    run = Run.from_trec(run_dir / "tiny-beir-test.run")
    assert sorted(run.query_ids) == ["q1", "q2", "q3"] and all(len(run[q]) == 4 for q in run)
    metrics = json.loads((run_dir / "tiny-beir-test.metrics.json").read_text())
    assert set(metrics) == {"nDCG@10", "RR@10", "R@100"}
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "tiny-beir-test" in out


def test_unknown_option_is_named(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]
    config = _config(tmp_path, tiny_bert_dir, docs, index_dir=str(tmp_path / "i"), index_dirr="typo")
    with pytest.raises(SystemExit):
        main(["index", "--config", str(config)])
    assert "index_dirr" in capsys.readouterr().err


def test_searching_with_a_mismatched_model_fails_clearly(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]
    main(["index", "--config", str(_config(tmp_path, tiny_bert_dir, docs, index_dir=str(tmp_path / "i")))])
    queries = [{"class_path": "boltir.QueryDataset", "init_args": {"source": str(tiny_beir)}}]
    config = _config(tmp_path, tiny_bert_dir, queries, index_dir=str(tmp_path / "i"), run_dir=str(tmp_path / "r"))
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--config", str(config), "--model.init_args.config", '{"doc_pooling": "cls"}'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "boltir: error:" in err and "doc_pooling: index 'mean' vs model 'cls'" in err and "Traceback" not in err


def test_missing_data_file_is_one_line(tiny_bert_dir, tmp_path, capsys):
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tmp_path / "nowhere.jsonl")}}]
    with pytest.raises(SystemExit):
        main(["index", "--config", str(_config(tmp_path, tiny_bert_dir, docs, index_dir=str(tmp_path / "i")))])
    assert "nowhere.jsonl" in capsys.readouterr().err


def test_re_rank_a_run_with_a_bi_encoder(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    first_stage = tmp_path / "first.run"
    Run({"q1": {"d2": 2.0, "d1": 1.0, "d3": 0.5}, "q2": {"d3": 1.0, "d4": 0.9}}).to_trec(first_stage)
    runs = [{"class_path": "boltir.RunDataset",
             "init_args": {"run": str(first_stage), "queries": str(tiny_beir), "corpus": str(tiny_beir), "depth": 2}}]
    main(["re_rank", "--config", str(_config(tmp_path, tiny_bert_dir, runs, run_path=str(tmp_path / "re.run")))])
    reranked = Run.from_trec(tmp_path / "re.run")
    assert {q: sorted(d for d, _ in reranked[q]) for q in reranked} == {"q1": ["d1", "d2"], "q2": ["d3", "d4"]}
    assert "nDCG@10" in capsys.readouterr().out


def test_duplicate_document_ids_fail_before_encoding_and_duplicate_ids_reaches_the_corpus(tiny_bert_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in [("a", "x y"), ("b", "z"), ("a", "w")]))
    index_dir = tmp_path / "index"
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(corpus)}}]
    with pytest.raises(SystemExit):
        main(["index", "--config", str(_config(tmp_path, tiny_bert_dir, docs, index_dir=str(index_dir)))])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # before it: transformers' weight-loading bar
    assert err.startswith("boltir: error: ")
    assert f"{corpus}:3: document id 'a' repeats the one at {corpus}:1" in err
    assert not index_dir.exists()
    docs[0]["init_args"]["duplicate_ids"] = "last"
    main(["index", "--config", str(_config(tmp_path, tiny_bert_dir, docs, index_dir=str(index_dir)))])
    assert read_manifest(index_dir)["count"] == 2
    assert (resolve_index(index_dir) / "doc_ids.txt").read_text().split() == ["b", "a"]


def test_zero_batch_size_is_refused_naming_the_option(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]
    config = _config(tmp_path, tiny_bert_dir, docs, index_dir=str(tmp_path / "i"))
    with pytest.raises(SystemExit):
        main(["index", "--config", str(config), "--data.init_args.inference_batch_size", "0"])
    assert "data.inference_batch_size must be an integer of at least 1, got 0" in capsys.readouterr().err
