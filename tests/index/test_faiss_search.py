"""The Faiss searcher: ids mapped in one step, approximate indexes with missing hits, caller's memory untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltir import BiEncoderModule, FaissIndexConfig, open_searcher


def _index(module: BiEncoderModule, directory, vectors: torch.Tensor, factory: str = "Flat") -> None:
    indexer = FaissIndexConfig(factory=factory, train_size=len(vectors)).indexer(directory, module.model)
    indexer.add([f"d{i}" for i in range(len(vectors))], vectors)
    indexer.finish()


def test_search_returns_ids_best_first_and_leaves_queries_alone(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    torch.manual_seed(0)
    docs = torch.randn(50, module.model.embedding_dim)
    _index(module, tmp_path / "flat", docs)
    queries = docs[:5].clone() * 3.0  # cosine: scale does not matter, and must not be normalised in place
    before = queries.clone()
    scores, ids = open_searcher(tmp_path / "flat").search_arrays(queries, 10)
    torch.testing.assert_close(queries, before)
    assert [row[0] for row in ids] == [f"d{i}" for i in range(5)]
    assert scores.shape == (5, 10) and np.all(np.diff(scores, axis=1) <= 1e-6)
    exact = torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(docs, dim=-1).T
    torch.testing.assert_close(torch.as_tensor(scores), exact.topk(10).values, atol=1e-5, rtol=1e-5)


def test_search_drops_missing_hits_of_approximate_indexes(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    torch.manual_seed(0)
    docs = torch.randn(64, module.model.embedding_dim)
    _index(module, tmp_path / "ivf", docs, factory="IVF8,Flat")
    searcher = open_searcher(tmp_path / "ivf", nprobe=1)  # one list of ~8 vectors cannot fill k=20
    scores, ids = searcher.search_arrays(docs[:4], 20)
    assert all(0 < len(row) < 20 for row in ids)
    assert all(len(set(row)) == len(row) for row in ids)
    assert [row[0] for row in ids] == ["d0", "d1", "d2", "d3"]


def test_search_returns_a_run_of_the_arrays_answer(tiny_bert_dir, tmp_path):
    """``search`` gives the run that ``search_arrays``'s scores and ids describe, queries named by the given ids."""
    from boltir import Run

    module = BiEncoderModule(tiny_bert_dir)
    torch.manual_seed(0)
    docs = torch.randn(30, module.model.embedding_dim)
    _index(module, tmp_path / "flat", docs)
    searcher = open_searcher(tmp_path / "flat")
    scores, ids = searcher.search_arrays(docs[:3], 5)
    run = searcher.search(docs[:3], 5, ["qa", "qb", "qc"])
    assert isinstance(run, Run) and run.query_ids == ["qa", "qb", "qc"]
    for query_id, row_scores, row_ids in zip(run.query_ids, scores, ids):
        assert [d for d, _ in run[query_id]] == list(row_ids)
        assert [s for _, s in run[query_id]] == pytest.approx(row_scores.tolist())
    assert searcher.search(docs[:2], 5).query_ids == ["0", "1"]
