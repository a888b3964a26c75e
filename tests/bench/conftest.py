"""Fixtures shared by the benchmark tests: a tiny random cross-encoder (built once) and a temporary folder that
the scripts' own temporary files (corpora, model copies, indexes) go under, in this process and its children."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from benchmarks.common import random_weights_copy


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """tiny_bert_dir as a one-label sequence classifier (random weights), as the re-ranking rows use."""
    tempfile.tempdir, before = str(tmp_path_factory.mktemp("cross-encoder")), tempfile.tempdir
    try:
        return random_weights_copy(tiny_bert_dir, classifier=True)
    finally:
        tempfile.tempdir = before


@pytest.fixture()
def quiet_temp(tmp_path, monkeypatch) -> Path:
    """``tmp_path``, where the scripts' temporary files go (``tempfile`` here, ``TMPDIR`` for child processes)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("BOLTIR_BENCH_INDEX_DIR", str(tmp_path / "index"))  # benchmarks.indexing's index folder
    return tmp_path
