"""SPLADE and ColBERT through index, search and re-rank, as a dense bi-encoder goes through them."""

from __future__ import annotations

import pytest

from boltir import DataModule, DocDataset, IndexMismatchError, QueryDataset, RunDataset, Trainer
from boltir.index import FaissIndexConfig, MultiVectorExactIndexConfig, SeismicIndexConfig, SparseExactIndexConfig
from boltir.models import ColBERTConfig
from boltir.modules import BiEncoderModule, ColBERTModule, SpladeModule


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


def test_searching_with_the_wrong_kind_of_model_fails_clearly(tiny_bert_dir, tiny_bert_mlm_dir, tiny_beir, tmp_path):
    splade, dense = SpladeModule(tiny_bert_mlm_dir), BiEncoderModule(tiny_bert_dir)
    trainer = _trainer()
    trainer.index(splade, DataModule(DocDataset(tiny_beir)), tmp_path / "sparse", SparseExactIndexConfig())
    trainer.index(dense, DataModule(DocDataset(tiny_beir)), tmp_path / "dense", FaissIndexConfig())
    queries = DataModule(QueryDataset(tiny_beir, split="test"))
    with pytest.raises(IndexMismatchError, match="holds sparse vectors .* BiEncoderModel makes dense ones"):
        trainer.search(dense, queries, tmp_path / "sparse", run_dir=tmp_path / "runs")
    with pytest.raises(IndexMismatchError, match="holds dense vectors .* SpladeModel makes sparse ones"):
        trainer.search(splade, queries, tmp_path / "dense", run_dir=tmp_path / "runs")
    with pytest.raises(IndexMismatchError, match="seismic engine stores sparse vectors, but the model makes dense"):
        trainer.index(dense, DataModule(DocDataset(tiny_beir)), tmp_path / "x", SeismicIndexConfig())
    assert not (tmp_path / "x").exists()
