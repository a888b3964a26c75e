"""Config files: decode errors are one line naming file:line:column; relative paths resolve beside the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from boltir import BiEncoderModule, ConfigError
from boltir._config_files import DATA, MODEL, PATH, ConfigFile, config_origin, names_a_path, read_config
from boltir.models.config import read_family
from boltir.serve import ServeConfig


def test_a_yaml_error_names_file_line_and_column_in_one_line(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        read_config(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}:3:2: not valid YAML:") and "expected ',' or ']'" in message


def test_a_json_config_error_names_file_line_and_column(tmp_path, tiny_bert_dir):
    directory = tmp_path / "model"
    BiEncoderModule(tiny_bert_dir).save_pretrained(directory)
    config = directory / "boltir_config.json"
    config.write_text('{\n  "family": "bi-encoder",\n  "doc_length" 128\n}\n')
    with pytest.raises(ConfigError, match=rf"^{config}:3:16: not valid JSON: Expecting ':' delimiter$"):
        read_family(directory)
    with pytest.raises(ConfigError, match=rf"{config}:3:16: not valid JSON"):
        BiEncoderModule(directory)


def test_a_serve_config_resolves_its_paths_beside_it(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "scifact").mkdir()
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump({"index_dir": "../indexes/x", "corpus": "scifact",
                                    "model": "sentence-transformers/all-MiniLM-L6-v2", "reranker": "./ce"}))
    monkeypatch.chdir(tmp_path)
    config = ServeConfig.from_yaml(os.path.relpath(path))
    assert config.index_dir == str(tmp_path / "indexes" / "x") and config.corpus == str(folder / "scifact")
    assert config.model == "sentence-transformers/all-MiniLM-L6-v2" and config.reranker == str(folder / "ce")
    path.write_text("index_dir: x\ncorpus: [y\n")
    with pytest.raises(ConfigError, match=r"serve.yaml:3:1: not valid YAML"):
        ServeConfig.from_yaml(path)


def test_an_error_naming_a_resolved_path_finds_where_it_was_written(tmp_path):
    config = ConfigFile(tmp_path / "c.yaml", lines={("index_dir",): 7})
    resolved = config.resolve("../runs/a.run", PATH, ("index_dir",))
    assert resolved == str(tmp_path.parent / "runs" / "a.run")
    assert config_origin(f"{resolved}: file not found") == f"{tmp_path / 'c.yaml'}:7: '../runs/a.run'"
    assert config_origin(f"{resolved}x: file not found") is None


_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True)


@given(org=_NAME, name=_NAME)
def test_hub_names_stay_names_and_dotted_paths_are_paths(org, name):
    folder = Path("/nonexistent-config-folder")
    assert not names_a_path(f"{org}/{name}", MODEL, folder)  # a hub name: one '/'
    assert not names_a_path(f"{org}/{name}/test", DATA, folder)  # an ir_datasets id: no extension
    for kind in (MODEL, DATA):
        assert names_a_path(f"./{org}", kind, folder) and names_a_path(f"../{org}/{name}", kind, folder)
    assert names_a_path(f"{org}/{name}.jsonl", DATA, folder)
    assert names_a_path(f"{org}/{name}/x", MODEL, folder)  # two '/': not a hub name
