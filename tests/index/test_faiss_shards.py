"""Faiss built from shards: in memory, one sub-index per shard, or inverted lists merged on disk — the same results."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError, FaissIndexConfig, open_searcher
from boltir.callbacks.index import build_index
from boltir.index.shards import ShardWriter
from boltir.index.storage import resolve_index


@pytest.fixture()
def module(tiny_bert_dir):
    return BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(similarity="dot"))


@pytest.fixture()
def shards(tmp_path):
    torch.manual_seed(0)
    vectors = torch.randn(400, 32)
    for rank in (0, 1):  # two processes' shards, as DDP writes them
        writer = ShardWriter(tmp_path / "shards", rank=rank, shard_size=64)
        for start in range(rank * 200, rank * 200 + 200, 50):
            writer.add([f"d{i}" for i in range(start, start + 50)], vectors[start : start + 50])
        writer.close()
    return tmp_path / "shards", vectors


LAYOUTS = [(f, {}) for f in ("Flat", "IVF8,Flat", "HNSW16")] + [(f, {"sharded": True}) for f in ("Flat", "IVF8,Flat", "HNSW16")]


@pytest.mark.parametrize("factory,layout", [*LAYOUTS, ("IVF8,Flat", {"on_disk": True})], ids=str)
def test_every_layout_finds_what_exact_search_finds(module, shards, tmp_path, factory, layout):
    shard_dir, vectors = shards
    config = FaissIndexConfig(factory=factory, train_size=200, **layout)
    index_dir = build_index(shard_dir, tmp_path / "index", config, module.model)
    moved = shutil.move(index_dir, tmp_path / "moved")  # an on-disk index finds its lists beside it after a move
    searcher = open_searcher(moved, nprobe=8, ef_search=256)
    assert searcher.manifest["count"] == 400 and searcher.manifest.get("parts") == (4 if layout.get("sharded") else None)  # 2 ranks x 2 shards
    queries = torch.randn(5, 32)
    scores, ids = searcher.search_arrays(queries, 10)
    exact = (queries @ vectors.T).topk(10)
    assert ids == [[f"d{i}" for i in row] for row in exact.indices.tolist()]
    np.testing.assert_allclose(scores, exact.values.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("factory", ["Flat", "HNSW16"])
def test_on_disk_needs_an_ivf_factory(module, shards, tmp_path, factory):
    with pytest.raises(ConfigError, match="on_disk needs an IVF factory"):
        build_index(shards[0], tmp_path / "bad", FaissIndexConfig(factory=factory, on_disk=True), module.model)
    with pytest.raises(ConfigError, match="not both"):
        FaissIndexConfig(factory="IVF8,Flat", on_disk=True, sharded=True).indexer(tmp_path / "bad", module.model)


def test_on_disk_ivf_pq_keeps_codes_on_disk(module, shards, tmp_path):
    config = FaissIndexConfig(factory="IVF4,PQ8x4", train_size=400, on_disk=True)
    index_dir = build_index(shards[0], tmp_path / "index", config, module.model)
    live = resolve_index(index_dir)  # the version CURRENT names
    files = {p.name for p in live.iterdir()}
    assert {"index.faiss", "index.ivfdata"} <= files and "parts" not in files
    assert (live / "index.faiss").stat().st_size < (live / "index.ivfdata").stat().st_size
    _, ids = open_searcher(index_dir, nprobe=4).search_arrays(shards[1][:20], 10)
    assert sum(f"d{i}" in row for i, row in enumerate(ids)) >= 15  # PQ: most documents find themselves


@pytest.mark.parametrize("layout", [{}, {"sharded": True}, {"on_disk": True}], ids=str)
@pytest.mark.parametrize("refine,factory", [("Flat", "IVF8,PQ4x4np"), (None, "IVF8,PQ4x4np,Refine(Flat)")], ids=["option", "factory"])
def test_refined_pq_finds_what_exact_search_finds_in_every_layout(module, shards, tmp_path, layout, refine, factory):
    """PQ4x4 codes alone rank 32-dim vectors badly; re-ranking enough candidates with the float32 vectors is exact."""
    shard_dir, vectors = shards
    config = FaissIndexConfig(factory=factory, refine=refine, train_size=400, **layout)
    index_dir = build_index(shard_dir, tmp_path / "index", config, module.model)
    queries = torch.randn(5, 32)
    exact = (queries @ vectors.T).topk(10)
    expected = [[f"d{i}" for i in row] for row in exact.indices.tolist()]
    scores, ids = open_searcher(index_dir, nprobe=8, k_factor=40).search_arrays(queries, 10)  # 400 candidates: all
    assert ids == expected
    np.testing.assert_allclose(scores, exact.values.numpy(), rtol=1e-4, atol=1e-4)
    _, coarse = open_searcher(index_dir, nprobe=8, k_factor=1).search_arrays(queries, 10)  # no room to re-rank
    assert coarse != expected


def test_sq8_refinement_is_a_quarter_of_the_vectors_and_beats_pq_alone(module, shards, tmp_path):
    shard_dir, vectors = shards
    queries = torch.randn(20, 32)
    exact = (queries @ vectors.T).topk(10).indices.tolist()

    def recall(**options):
        index_dir = build_index(shard_dir, tmp_path / str(len(options)), FaissIndexConfig(factory="IVF8,PQ4x4np", train_size=400, **options), module.model)
        _, ids = open_searcher(index_dir, nprobe=8, **({"k_factor": 10} if options else {})).search_arrays(queries, 10)
        sizes = {p.name: p.stat().st_size for p in resolve_index(index_dir).iterdir()}
        return np.mean([len({f"d{i}" for i in e} & set(found)) / 10 for e, found in zip(exact, ids)]), sizes["index.faiss"]

    alone, pq_bytes = recall()
    refined, refined_bytes = recall(refine="SQ8")
    assert refined > alone + 0.2 and refined > 0.9
    assert 400 * 32 <= refined_bytes - pq_bytes < 400 * 32 * 1.2  # one byte a dimension, not four


def test_refine_options_are_checked(module, shards, tmp_path):
    with pytest.raises(ConfigError, match="already refines"):
        FaissIndexConfig(factory="IVF8,PQ4x4,Refine(SQ8)", refine="SQ8").indexer(tmp_path / "a", module.model)
    with pytest.raises(ConfigError, match="factory / refine"):
        FaissIndexConfig(factory="IVF8,PQ4x4", refine="SQ3000").indexer(tmp_path / "b", module.model)
    index_dir = build_index(shards[0], tmp_path / "flat", FaissIndexConfig(), module.model)
    with pytest.raises(ConfigError, match="needs a refined index"):
        open_searcher(index_dir, k_factor=4)
