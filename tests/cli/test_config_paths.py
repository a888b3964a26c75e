"""Relative paths in a config file resolve against the file's folder, whatever the working directory; relative
paths on the command line against the working directory; names (hub models, ir_datasets ids) stay names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from boltir import ConfigError, Run
from boltir.cli import main
from boltir.cli._config_paths import resolve_config_args
from boltir.index import read_manifest


def _write(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _lightning_config(model: str, datasets: list, **top: object) -> dict:
    return {
        "model": {"class_path": "boltir.BiEncoderModule", "init_args": {"model_name_or_path": model}},
        "data": {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": datasets, "inference_batch_size": 2}},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
        **top,
    }


@pytest.fixture()
def project(tmp_path, tiny_bert_dir, tiny_beir) -> Path:
    """configs/index.yaml and configs/search.yaml naming the data, the model and their outputs relative to
    configs/ (as the shipped configs do): ../data/tiny-beir, ../outputs/..."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    tiny_beir.rename(root / "data" / "tiny-beir")
    model = os.path.relpath(tiny_bert_dir, root / "configs")  # ../../...: a path, not a hub name
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": "../data/tiny-beir"}}]
    queries = [{"class_path": "boltir.QueryDataset", "init_args": {"source": "../data/tiny-beir", "split": "test"}}]
    _write(root / "configs" / "index.yaml", _lightning_config(model, docs, index_dir="../outputs/index"))
    _write(root / "configs" / "search.yaml", _lightning_config(model, queries, index_dir="../outputs/index", k=3,
                                                              run_path="../outputs/tiny-test.run"))
    return root


def test_the_same_config_resolves_to_the_same_files_from_any_working_directory(project, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(project)  # from the project's root, with the config named relative to it
    main(["index", "--config", "configs/index.yaml"])
    main(["search", "--config", "configs/search.yaml"])
    first = (project / "outputs" / "tiny-test.run").read_text()
    manifest = read_manifest(project / "outputs" / "index")

    monkeypatch.chdir(elsewhere)  # from another folder, with the config named by its absolute path
    (project / "outputs" / "tiny-test.run").unlink()
    main(["index", "--config", str(project / "configs" / "index.yaml")])
    main(["search", "--config", os.path.relpath(project / "configs" / "search.yaml")])
    assert (project / "outputs" / "tiny-test.run").read_text() == first
    assert read_manifest(project / "outputs" / "index")["count"] == manifest["count"] == 6
    assert list(elsewhere.iterdir()) == [] and not (project / "configs" / "outputs").exists()


def test_a_relative_path_on_the_command_line_is_relative_to_the_working_directory(project, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    main(["index", "--config", str(project / "configs" / "index.yaml"), "--index_dir", "here/index"])
    assert read_manifest(cwd / "here" / "index")["count"] == 6
    assert not (project / "outputs").exists()
    main(["search", "--config", str(project / "configs" / "search.yaml"), "--index_dir", "here/index",
          "--run_path", "here/test.run"])
    assert sorted(Run.from_trec(cwd / "here" / "test.run").query_ids) == ["q1", "q2", "q3"]


def test_a_missing_config_relative_file_names_the_config_line_and_the_resolved_path(project, tiny_bert_dir, tmp_path, monkeypatch,
                                                                                     capsys):
    runs = [{"class_path": "boltir.RunDataset",
             "init_args": {"run": "../runs/first-stage.run", "queries": "../data/tiny-beir", "corpus": "../data/tiny-beir"}}]
    config = _write(project / "configs" / "re-rank.yaml", _lightning_config(str(tiny_bert_dir), runs, run_path="../outputs/re.run"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["re_rank", "--config", str(config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "first-stage.run" in text)
    assert len(err.splitlines()) == 1 and err.startswith("boltir: error:")
    assert str(project / "runs" / "first-stage.run") in err and f"{config}:{line}: '../runs/first-stage.run'" in err


def _resolved(tmp_path: Path, config: dict, command: str = "index", name: str = "configs/x.yaml") -> dict:
    path = _write(tmp_path / name, config)
    args = resolve_config_args(command, ["--config", str(path)])
    return json.loads(args[1])


def test_names_stay_names_and_paths_become_absolute(tmp_path):
    (tmp_path / "configs" / "local-model").mkdir(parents=True)
    datasets = [
        {"class_path": "boltir.DocDataset", "init_args": {"source": "beir/scifact/test"}},  # an ir_datasets id
        {"class_path": "boltir.DocDataset", "init_args": {"source": "data/corpus.jsonl"}},  # a file (has an extension)
        {"class_path": "boltir.QueryDataset", "init_args": {"source": "/abs/queries.jsonl", "qrels": "~/qrels.tsv"}},
        {"class_path": "boltir.QueryDataset", "init_args": {"source": "msmarco-passage/dev", "qrels": "qrels/dev.tsv"}},
    ]
    config = _lightning_config("sentence-transformers/all-MiniLM-L6-v2", datasets, index_dir="indexes/x")
    config["trainer"]["default_root_dir"] = "outputs"
    config["trainer"]["callbacks"] = [{"class_path": "boltir.ModelDirCheckpoint", "init_args": {"dirpath": "checkpoints"}}]
    config["trainer"]["logger"] = {"class_path": "CSVLogger", "init_args": {"save_dir": "logs"}}  # a short class name
    resolved = _resolved(tmp_path, config)
    here = tmp_path / "configs"
    assert resolved["model"]["init_args"]["model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    sources = [d["init_args"] for d in resolved["data"]["init_args"]["inference_datasets"]]
    assert sources[0]["source"] == "beir/scifact/test" and sources[1]["source"] == str(here / "data" / "corpus.jsonl")
    assert sources[2] == {"source": "/abs/queries.jsonl", "qrels": "~/qrels.tsv"}
    assert sources[3] == {"source": "msmarco-passage/dev", "qrels": str(here / "qrels" / "dev.tsv")}
    assert resolved["index_dir"] == str(here / "indexes" / "x")
    assert resolved["trainer"]["default_root_dir"] == str(here / "outputs")
    assert resolved["trainer"]["callbacks"][0]["init_args"]["dirpath"] == str(here / "checkpoints")
    assert resolved["trainer"]["logger"]["init_args"]["save_dir"] == str(here / "logs")

    config["model"]["init_args"]["model_name_or_path"] = "local-model"  # exists beside the config: a path
    assert _resolved(tmp_path, config)["model"]["init_args"]["model_name_or_path"] == str(here / "local-model")


def test_fit_options_and_lists_of_paths(tmp_path):
    config = {"ckpt_path": "last", "data": {"class_path": "boltir.DataModule", "init_args": {"train_dataset": {
        "class_path": "boltir.RunTupleDataset",
        "init_args": {"run": "../runs/train.run", "queries": "../data", "corpus": "../data", "teacher_run": "t.run"}}}}}
    resolved = _resolved(tmp_path, config, "fit")
    here = tmp_path / "configs"
    assert resolved["ckpt_path"] == "last"  # Lightning's name, not a file
    args = resolved["data"]["init_args"]["train_dataset"]["init_args"]
    assert args == {"run": str(tmp_path / "runs" / "train.run"), "queries": str(tmp_path / "data"),
                    "corpus": str(tmp_path / "data"), "teacher_run": str(here / "t.run")}
    assert _resolved(tmp_path, {"ckpt_path": "ckpts/last.ckpt"}, "fit")["ckpt_path"] == str(here / "ckpts" / "last.ckpt")
    search = _resolved(tmp_path, {"run_path": ["a.run", "/b.run"], "run_dir": "runs"}, "search")
    assert search == {"run_path": [str(here / "a.run"), "/b.run"], "run_dir": str(here / "runs")}


def test_a_nested_config_resolves_against_its_own_folder(tmp_path):
    data = {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": [
        {"class_path": "boltir.DocDataset", "init_args": {"source": "corpus.jsonl"}}]}}
    _write(tmp_path / "shared" / "data.yaml", data)
    _write(tmp_path / "shared" / "trainer.yaml", {"default_root_dir": "logs"})
    resolved = _resolved(tmp_path, {"data": "../shared/data.yaml", "trainer": "../shared/trainer.yaml",
                                    "index_dir": "index"})
    source = resolved["data"]["init_args"]["inference_datasets"][0]["init_args"]["source"]
    assert source == str(tmp_path / "shared" / "corpus.jsonl")
    assert resolved["trainer"] == {"default_root_dir": str(tmp_path / "shared" / "logs")}
    assert resolved["index_dir"] == str(tmp_path / "configs" / "index")
    with pytest.raises(ConfigError, match=rf"x.yaml:1: config file 'data.yaml' not found \(looked for {tmp_path / 'configs'}/data.yaml\)"):
        _resolved(tmp_path, {"data": "data.yaml"})


def test_a_config_that_is_not_valid_yaml_is_one_line_with_file_line_and_column(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  class_path: boltir.BiEncoderModule\n  init_args: {model_name_or_path: x\nindex_dir: i\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["index", "--config", str(config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"boltir: error: {config}:4:") and "not valid YAML" in err


def test_serve_resolves_its_config_paths_and_reports_a_missing_index_in_one_line(tmp_path, tiny_beir, monkeypatch, capsys):
    corpus = os.path.relpath(tiny_beir, tmp_path / "configs")
    config = _write(tmp_path / "configs" / "serve.yaml", {"index_dir": "../indexes/none", "corpus": corpus})
    monkeypatch.chdir(tiny_beir)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("boltir: error:") and str(tmp_path / "indexes" / "none") in err
    assert f"{config}:1: '../indexes/none'" in err
