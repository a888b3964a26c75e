"""SPLADE and ColBERT through index, search and re-rank, as a dense bi-encoder goes through them."""

from __future__ import annotations

import pytest

from boltir import DataModule, DocDataset, QueryDataset, RunDataset, Trainer
from boltir.index import MultiVectorExactIndexConfig, SeismicIndexConfig, SparseExactIndexConfig, open_searcher
from boltir.models import ColBERTConfig
from boltir.modules import ColBERTModule, SpladeModule


def _trainer() -> Trainer:
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   accelerator="cpu")


def _index_and_search(module, beir, index_config, tmp_path):
    trainer = _trainer()
    trainer.index(module, DataModule(DocDataset(beir), inference_batch_size=4), tmp_path / "index", index_config)
    search = trainer.search(module, DataModule(QueryDataset(beir, split="test")), tmp_path / "index", k=3,
                            run_dir=tmp_path / "runs", measures=["nDCG@10", "R@3"])
    return search


@pytest.mark.parametrize("engine", [SeismicIndexConfig(), SparseExactIndexConfig()], ids=["seismic", "exact"])
def test_splade_indexes_searches_and_re_ranks(tiny_bert_mlm_dir, tiny_beir, tmp_path, engine):
    module = SpladeModule(tiny_bert_mlm_dir)
    search = _index_and_search(module, tiny_beir, engine, tmp_path)
    run = next(iter(search.runs.values()))
    assert len(run) == 3 and all(0 < len(run[q]) <= 3 for q in run.query_ids)
    assert set(search.results["tiny-beir-test"]) == {"nDCG@10", "R@3"}
    # the written run re-ranks through the same model
    rerank = _trainer().re_rank(module, DataModule(RunDataset(search.written[0], tiny_beir, tiny_beir)),
                                run_dir=tmp_path / "reranked")
    assert set(next(iter(rerank.runs.values())).query_ids) == set(run.query_ids)


@pytest.mark.parametrize("candidates", [2, None], ids=["faiss-candidates", "exhaustive"])
def test_colbert_indexes_searches_and_re_ranks(tiny_bert_dir, tiny_beir, tmp_path, candidates):
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=16, query_length=8))
    search = _index_and_search(module, tiny_beir, MultiVectorExactIndexConfig(candidates_per_token=candidates), tmp_path)
    run = next(iter(search.runs.values()))
    assert len(run) == 3 and all(len(run[q]) == 3 for q in run.query_ids)
    rerank = _trainer().re_rank(module, DataModule(RunDataset(search.written[0], tiny_beir, tiny_beir)),
                                run_dir=tmp_path / "reranked")
    reranked = next(iter(rerank.runs.values()))
    # exact MaxSim from the index (float16 storage) and the model's MaxSim re-ranking agree on every score
    for query_id in run.query_ids:
        assert dict(reranked[query_id]) == pytest.approx(dict(run[query_id]), abs=2e-3)
