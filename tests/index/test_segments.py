"""Segment-aware indexing and search: one vector per segment in the engine, documents (max over segments) in runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltir import BiEncoderConfig, BiEncoderModule, DataModule, DocDataset, QueryDataset, Trainer, open_searcher
from boltir.index import FaissIndexConfig, SegmentSearcher, TorchIndexConfig, read_manifest
from boltir.models.layers.segments import SegmentedVectors


def trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)


@pytest.fixture()
def maxp(tiny_bert_dir) -> BiEncoderModule:
    config = BiEncoderConfig(doc_length=6, segments={"aggregation": "maxp", "max_segments": 3})
    return BiEncoderModule(tiny_bert_dir, config=config)


@pytest.mark.parametrize("index_config", [FaissIndexConfig(), TorchIndexConfig(device="cpu")], ids=["faiss", "torch"])
def test_index_stores_segments_and_search_returns_documents(index_config, maxp, tiny_beir, tmp_path):
    index_dir = tmp_path / "index"
    datamodule = DataModule(DocDataset(tiny_beir), inference_batch_size=4)
    trainer().index(maxp, datamodule, index_dir=index_dir, index_config=index_config)
    manifest = read_manifest(index_dir)
    real_segments = int(maxp.model.tokenize_docs([d.text for d in DocDataset(tiny_beir)])["segment_mask"].sum())
    assert manifest["segments"] is True and manifest["documents"] == 6 and manifest["count"] == real_segments > 6
    searcher = open_searcher(index_dir)
    assert isinstance(searcher, SegmentSearcher)
    searcher.check_model(maxp.model)

    texts = {d.doc_id: d.text for d in DocDataset(tiny_beir)}
    queries = QueryDataset(tiny_beir).texts()
    scores, ids = searcher.search_arrays(maxp.encode_queries(list(queries.values())), k=4)
    doc_ids = list(texts)
    exact = maxp.model.score(maxp.encode_queries(list(queries.values())), maxp.encode_docs([texts[d] for d in doc_ids]))
    for row, (row_scores, row_ids) in enumerate(zip(scores, ids)):
        assert len(row_ids) == 4 and len(set(row_ids)) == 4  # distinct documents, never segment ids
        best = torch.topk(exact[row], 4)
        assert row_ids == [doc_ids[i] for i in best.indices.tolist()]
        np.testing.assert_allclose(row_scores, best.values.numpy(), rtol=1e-5, atol=1e-5)


def test_search_run_reports_document_ids(maxp, tiny_beir, tmp_path):
    index_dir = tmp_path / "index"
    trainer().index(maxp, DataModule(DocDataset(tiny_beir)), index_dir=index_dir)
    callback = trainer().search(maxp, DataModule(QueryDataset(tiny_beir)), index_dir=index_dir, k=10, run_dir=tmp_path / "runs")
    run = next(iter(callback.runs.values()))
    for query_id in run:
        ranked = [d for d, _ in run.ranked(query_id)]
        assert len(ranked) == 6 and sorted(ranked) == sorted(f"d{i}" for i in range(1, 7))


def test_searcher_fetches_deeper_when_one_document_fills_the_top(maxp, tmp_path):
    """Many segments of one document crowd the first fetch; the searcher asks again until k documents are found."""
    dim = maxp.model.embedding_dim
    query = torch.randn(1, dim)
    vectors = torch.randn(6, 8, dim)
    vectors[0] = query + 0.01 * torch.randn(8, dim)  # d0's 8 segments all beat every other document
    mask = torch.zeros(6, 8, dtype=torch.bool)
    mask[0], mask[1:, 0] = True, True  # the other documents have one segment each
    indexer = FaissIndexConfig().indexer(tmp_path / "index", maxp.model)
    indexer.add([f"d{i}" for i in range(6)], SegmentedVectors(vectors, mask))
    indexer.finish()
    searcher = open_searcher(tmp_path / "index")
    fetches = []
    inner_search = searcher.inner.search_arrays
    searcher.inner.search_arrays = lambda q, k: fetches.append(k) or inner_search(q, k)
    scores, ids = searcher.search_arrays(query, k=3)
    assert len(fetches) > 1 and fetches[0] < fetches[-1]
    assert ids[0][0] == "d0" and len(ids[0]) == 3 and len(set(ids[0])) == 3
    exact = maxp.model.score(query, SegmentedVectors(vectors, mask))[0]
    np.testing.assert_allclose(scores[0], torch.topk(exact, 3).values.numpy(), rtol=1e-5, atol=1e-5)


def test_plain_index_is_unchanged(tiny_bert_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    trainer().index(module, DataModule(DocDataset(tiny_beir)), index_dir=tmp_path / "index")
    manifest = read_manifest(tmp_path / "index")
    assert "segments" not in manifest and manifest["count"] == manifest["documents"] == 6
    assert not isinstance(open_searcher(tmp_path / "index"), SegmentSearcher)
