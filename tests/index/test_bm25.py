"""The BM25 engine: index and search texts through the usual callbacks, settings, and mismatched models."""

from __future__ import annotations

import numpy as np
import pytest

from boltir import (
    BiEncoderModule,
    BM25IndexConfig,
    BM25Module,
    ConfigError,
    DataModule,
    DocDataset,
    IndexMismatchError,
    QueryDataset,
    Trainer,
    open_searcher,
)
from boltir.index import read_manifest


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)


@pytest.fixture()
def bm25_index(tiny_beir, tmp_path):
    index_dir = tmp_path / "bm25"
    _trainer().index(BM25Module(), DataModule(DocDataset(tiny_beir), inference_batch_size=4), index_dir, BM25IndexConfig())
    return index_dir


def test_search_ranks_lexical_matches_first(bm25_index, tiny_beir, tmp_path):
    manifest = read_manifest(bm25_index)
    assert manifest["engine"] == "bm25" and manifest["count"] == 6 and manifest["fingerprint"]["representation"] == "text"
    callback = _trainer().search(BM25Module(), DataModule(QueryDataset(tiny_beir)), bm25_index, k=3, run_dir=tmp_path / "runs")
    run = callback.runs[0]
    assert [run[q][0][0] for q in ("q1", "q2", "q3")] == ["d1", "d3", "d6"]
    assert callback.results["tiny-beir-test"]["nDCG@10"] == pytest.approx(1.0)


def test_stemming_matches_word_forms_and_unknown_words_match_nothing(bm25_index):
    searcher = open_searcher(bm25_index)
    scores, ids = searcher.search_arrays(["tides", "zebra quokka", "the"], k=10)
    assert ids[0] == ["d3"]  # "tides" stems to "tide"
    assert ids[1] == [] and ids[2] == []  # unknown words, stopwords: no matching document
    assert scores.shape[0] == 3 and np.all(scores[0, 1:] == 0)


def test_k_above_corpus_size_returns_every_match(bm25_index):
    _, ids = open_searcher(bm25_index).search_arrays(["capital of germany and france"], k=100)
    assert set(ids[0]) == {"d1", "d2"}


def test_dense_models_and_bm25_indexes_do_not_mix(bm25_index, tiny_bert_dir, tiny_beir, tmp_path):
    with pytest.raises(IndexMismatchError, match="text"):
        open_searcher(bm25_index).check_model(BiEncoderModule(tiny_bert_dir).model)
    with pytest.raises(IndexMismatchError, match="bm25 engine stores text"):
        _trainer().index(BiEncoderModule(tiny_bert_dir), DataModule(DocDataset(tiny_beir)), tmp_path / "x", BM25IndexConfig())


def test_bad_settings_name_the_option():
    with pytest.raises(ConfigError, match="method"):
        BM25IndexConfig(method="okapi")
    with pytest.raises(ConfigError, match="k1"):
        BM25IndexConfig(k1=-1.0)
    with pytest.raises(ConfigError, match="stemmer"):
        BM25IndexConfig(stemmer="klingon").tokenizer()


def test_bm25_module_does_not_re_rank():
    with pytest.raises(ConfigError, match="BM25 index"):
        BM25Module().rank_scores(["q"], [["d"]])
