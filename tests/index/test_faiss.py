"""Faiss index: exact search equals brute force; builds are atomic; mismatched models are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError, FaissIndexConfig, IndexMismatchError, open_searcher
from boltir.index import read_manifest


@pytest.fixture()
def module(tiny_bert_dir):
    return BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(similarity="dot"))


def _build(module, directory, vectors, config=None):
    indexer = (config or FaissIndexConfig()).indexer(directory, module.model)
    for start in range(0, len(vectors), 7):
        chunk = vectors[start : start + 7]
        indexer.add([f"d{start + i}" for i in range(len(chunk))], chunk)
    return indexer.finish()


@pytest.mark.parametrize("similarity", ["dot", "cosine", "l2", "euclidean"])
def test_flat_search_equals_brute_force(tiny_bert_dir, tmp_path, similarity):
    module = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(similarity=similarity))
    torch.manual_seed(0)
    docs, queries = torch.randn(50, 32), torch.randn(4, 32)
    searcher = open_searcher(_build(module, tmp_path / "idx", docs))
    scores, ids = searcher.search_arrays(queries, 5)
    expected = module.model.score(queries, docs)
    top = expected.topk(5)
    assert ids == [[f"d{i}" for i in row] for row in top.indices.tolist()]
    np.testing.assert_allclose(scores, top.values.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("factory,settings", [("IVF4,Flat", {"nprobe": 4}), ("HNSW8", {"ef_search": 64}), ("IVF2,PQ4x4", {"nprobe": 2})])
def test_approximate_factories_build_and_search(module, tmp_path, factory, settings):
    torch.manual_seed(0)
    docs = torch.randn(300, 32)
    directory = _build(module, tmp_path / "idx", docs, FaissIndexConfig(factory=factory, train_size=100))
    searcher = open_searcher(directory, **settings)
    assert searcher.manifest["count"] == 300
    _, ids = searcher.search_arrays(docs[:3], 1)
    if "PQ" not in factory:  # exact lists visited: a document finds itself
        assert [row[0] for row in ids] == ["d0", "d1", "d2"]


def test_bad_factory_and_untrainable_index(module, tmp_path):
    with pytest.raises(ConfigError, match="not a valid Faiss factory string"):
        FaissIndexConfig(factory="Bogus99").indexer(tmp_path / "x", module.model)
    with pytest.raises(ConfigError, match="fewer IVF lists"):
        _build(module, tmp_path / "y", torch.randn(5, 32), FaissIndexConfig(factory="IVF64,Flat"))
    for failed in ("x", "y"):  # no index, and the lock is free for the next build
        with pytest.raises(IndexMismatchError, match="not a complete boltir index"):
            open_searcher(tmp_path / failed)
        _build(module, tmp_path / failed, torch.randn(5, 32))


def test_interrupted_build_leaves_nothing_a_searcher_accepts(module, tmp_path):
    indexer = FaissIndexConfig().indexer(tmp_path / "idx", module.model)
    indexer.add(["a", "b"], torch.randn(2, 32))
    # the process dies here: finish() never runs
    with pytest.raises(IndexMismatchError, match="not a complete boltir index"):
        open_searcher(tmp_path / "idx")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "index.faiss").write_bytes(b"partial")
    with pytest.raises(IndexMismatchError, match="no manifest.json"):
        open_searcher(tmp_path / "half")


def test_rebuild_replaces_old_index_only_when_complete(module, tmp_path):
    directory = _build(module, tmp_path / "idx", torch.randn(10, 32))
    indexer = FaissIndexConfig().indexer(directory, module.model)
    indexer.add(["x"], torch.randn(1, 32))
    indexer.abort()
    assert read_manifest(directory)["count"] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_searching_with_another_dimension_or_pooling_is_refused(tiny_bert_dir, tmp_path):
    builder = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(doc_pooling="mean"))
    directory = _build(builder, tmp_path / "idx", torch.randn(10, 32))
    searcher = open_searcher(directory)
    searcher.check_model(builder.model)
    other_pooling = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(doc_pooling="cls"))
    with pytest.raises(IndexMismatchError, match="doc_pooling: index 'mean' vs model 'cls'"):
        searcher.check_model(other_pooling.model)
    other_dim = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(embedding_dim=16))
    with pytest.raises(IndexMismatchError, match="dim: index 32 vs model 16"):
        searcher.check_model(other_dim.model)
