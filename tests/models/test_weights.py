"""Damaged weight files are named in one line; SHA-256 recorded on save, checked by verify=True (#16 item 12)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from boltir import ConfigError, DamagedFileError
from boltir.models import BiEncoderModel, ColBERTModel, load_model
from boltir.models.config import CONFIG_NAME
from boltir.models.weights import file_sha256


@pytest.fixture
def saved_model(tiny_bert_dir, tmp_path):
    """A ColBERT model (backbone weights plus a head file) saved by boltir."""
    directory = tmp_path / "colbert"
    ColBERTModel.from_pretrained(tiny_bert_dir, embedding_dim=8).save_pretrained(directory)
    return directory


def test_saving_records_every_weight_files_sha256(saved_model):
    recorded = json.loads((saved_model / CONFIG_NAME).read_text())["weights_sha256"]
    assert set(recorded) == {"model.safetensors", "boltir_heads.safetensors"}
    assert all(recorded[name] == file_sha256(saved_model / name) for name in recorded)
    model = load_model(saved_model, verify=True)  # intact: loads, and the record is not taken for an option
    assert isinstance(model, ColBERTModel) and model.config.embedding_dim == 8


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[: len(data) // 2], lambda data: b"\x00" * 8 + data[8:], lambda data: b"garbage" * 100, lambda data: b""],
    ids=["truncated", "bad-header-size", "garbage", "empty"],
)
@pytest.mark.parametrize("name", ["model.safetensors", "boltir_heads.safetensors"])
def test_a_truncated_or_garbled_weight_file_is_one_line_naming_it(saved_model, damage, name):
    path = saved_model / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DamagedFileError, match=rf"^model weights at {re.escape(str(path))} are damaged \(.+\)") as caught:
        load_model(saved_model)
    assert "\n" not in str(caught.value)


def test_verify_finds_a_corruption_that_still_parses(saved_model):
    path = saved_model / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # a bit of the last tensor flipped: safetensors still reads the file
    path.write_bytes(bytes(data))
    load_model(saved_model)  # without verify nothing can tell
    with pytest.raises(DamagedFileError, match=rf"^model weights at {re.escape(str(path))} are damaged \(SHA-256 .* differs"):
        load_model(saved_model, verify=True)
    with pytest.raises(DamagedFileError, match="model.safetensors are damaged"):
        ColBERTModel.from_pretrained(saved_model, verify=True)
    path.unlink()
    with pytest.raises(DamagedFileError, match=rf"model weights at {re.escape(str(path))} are missing"):
        load_model(saved_model, verify=True)


def test_verify_needs_recorded_hashes(tiny_bert_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_bert_dir, plain)
    assert BiEncoderModel.from_pretrained(plain).config is not None
    with pytest.raises(ConfigError, match=r"records no SHA-256 of its weights"):
        BiEncoderModel.from_pretrained(plain, verify=True)


def test_a_damaged_plain_hf_directory_is_named_too(tiny_bert_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_bert_dir, plain)
    weights = plain / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DamagedFileError, match=r"model weights at .*model.safetensors are damaged"):
        BiEncoderModel.from_pretrained(plain)
