"""The torch exact engine agrees with Faiss flat and with brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError, FaissIndexConfig, TorchIndexConfig, open_searcher


def _build(config, module, directory, docs):
    indexer = config.indexer(directory, module.model)
    for start in range(0, len(docs), 16):
        indexer.add([f"d{i}" for i in range(start, min(start + 16, len(docs)))], docs[start : start + 16])
    return indexer.finish()


@pytest.mark.parametrize("similarity", ["dot", "cosine", "l2", "euclidean"])
def test_torch_engine_matches_faiss_flat(tiny_bert_dir, tmp_path, similarity):
    module = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(similarity=similarity))
    torch.manual_seed(1)
    docs, queries = torch.randn(100, 32), torch.randn(7, 32)
    faiss_scores, faiss_ids = open_searcher(_build(FaissIndexConfig(), module, tmp_path / "f", docs)).search_arrays(queries, 10)
    searcher = open_searcher(_build(TorchIndexConfig(query_chunk=3), module, tmp_path / "t", docs))
    torch_scores, torch_ids = searcher.search_arrays(queries, 10)
    assert torch_ids == faiss_ids
    np.testing.assert_allclose(torch_scores, faiss_scores, rtol=1e-4, atol=1e-4)


def test_half_precision_storage_keeps_the_ranking(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    torch.manual_seed(2)
    docs = torch.randn(50, 32)
    searcher = open_searcher(_build(TorchIndexConfig(dtype="float16"), module, tmp_path / "h", docs))
    _, ids = searcher.search_arrays(docs[:5], 1)
    assert [row[0] for row in ids] == ["d0", "d1", "d2", "d3", "d4"]


def test_unknown_dtype():
    with pytest.raises(ConfigError, match="dtype='float8'"):
        TorchIndexConfig(dtype="float8")
