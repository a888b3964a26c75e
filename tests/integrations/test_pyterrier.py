"""boltir's PyTerrier transformers: retrieval, re-ranking, text loading and indexing in pipelines and pt.Experiment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyterrier as pt
import pytest

from boltir import (
    BiEncoderModule,
    CrossEncoderModule,
    DataModule,
    DocDataset,
    QueryDataset,
    Run,
    RunDataset,
    Trainer,
    evaluate,
    read_qrels,
)
from boltir.errors import ConfigError
from boltir.integrations.pyterrier import (
    BoltirIndexer,
    BoltirReRanker,
    BoltirRetriever,
    BoltirTextLoader,
    beir_qrels,
    beir_topics,
    frame_to_run,
)

NDCG10 = pt.measures.nDCG @ 10
# ../shared/data/scifact from the repository root, as the README reads it (SCIFACT_DIR elsewhere, e.g. a worktree)
SCIFACT_DIR = Path(os.environ.get("SCIFACT_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"))


def corpus_records(folder):
    return ({"docno": d.doc_id, "text": d.text} for d in DocDataset(folder))


@pytest.fixture()
def tiny_pipeline(tiny_bert_dir, tiny_beir, tmp_path):
    bi_encoder = BiEncoderModule(tiny_bert_dir)
    index_dir = BoltirIndexer(bi_encoder, tmp_path / "index", batch_size=4).index(corpus_records(tiny_beir))
    return bi_encoder, BoltirRetriever(bi_encoder, index_dir, k=5), tiny_beir


def test_retriever_returns_ranked_results_like_trainer_search(tiny_pipeline, tmp_path):
    bi_encoder, retriever, data = tiny_pipeline
    topics = beir_topics(data)
    results = retriever(topics)
    assert list(results.columns) == ["qid", "query", "docno", "score", "rank"]
    assert results.groupby("qid").size().tolist() == [5, 5, 5]
    for _, group in results.groupby("qid"):
        assert group["rank"].tolist() == list(range(5))
        assert group["score"].is_monotonic_decreasing
    Trainer(logger=False, enable_progress_bar=False).search(
        bi_encoder, DataModule(QueryDataset(data)), retriever.index_dir, k=5, run_path=tmp_path / "boltir.run")
    expected = Run.from_trec(tmp_path / "boltir.run")
    got = frame_to_run(results)
    for qid in expected:
        assert [d for d, _ in got[qid]] == [d for d, _ in expected[qid]]
        assert [s for _, s in got[qid]] == pytest.approx([s for _, s in expected[qid]], abs=1e-6)


def test_indexer_matches_trainer_index(tiny_pipeline, tmp_path):
    bi_encoder, retriever, data = tiny_pipeline
    Trainer(logger=False, enable_progress_bar=False).index(bi_encoder, DataModule(DocDataset(data)), tmp_path / "trainer-index")
    other = BoltirRetriever(bi_encoder, tmp_path / "trainer-index", k=5)
    topics = beir_topics(data)
    a, b = retriever(topics), other(topics)
    assert a["docno"].tolist() == b["docno"].tolist()
    assert a["score"].tolist() == pytest.approx(b["score"].tolist(), abs=1e-6)


def test_experiment_agrees_with_boltir_evaluation(tiny_pipeline, tiny_bert_dir):
    bi_encoder, retriever, data = tiny_pipeline
    reranker = BoltirReRanker(CrossEncoderModule(tiny_bert_dir))
    pipeline = retriever % 3 >> BoltirTextLoader(data) >> reranker
    topics, qrels = beir_topics(data), beir_qrels(data)
    table = pt.Experiment([retriever, pipeline, retriever + pipeline], topics, qrels, [NDCG10], names=["first", "rerank", "sum"])
    judgements = read_qrels(data / "qrels" / "test.tsv")
    for name, system in (("first", retriever), ("rerank", pipeline), ("sum", retriever + pipeline)):
        ours = evaluate(frame_to_run(system(topics)), judgements, ["nDCG@10"])["nDCG@10"]
        assert table.set_index("name").loc[name, "nDCG@10"] == pytest.approx(ours, abs=1e-9)
    reranked = pipeline(topics)
    assert reranked.groupby("qid").size().tolist() == [3, 3, 3]  # % 3 cut each query's candidates


def test_reranker_scores_do_not_depend_on_row_order(tiny_pipeline, tiny_bert_dir):
    _, retriever, data = tiny_pipeline
    candidates = (retriever >> BoltirTextLoader(data))(beir_topics(data))
    reranker = BoltirReRanker(CrossEncoderModule(tiny_bert_dir))
    ordered = reranker(candidates).set_index(["qid", "docno"])["score"]
    shuffled = reranker(candidates.sample(frac=1.0, random_state=3)).set_index(["qid", "docno"])["score"]
    assert shuffled.loc[ordered.index].tolist() == pytest.approx(ordered.tolist(), abs=1e-5)


def test_bi_encoder_reranks_with_its_own_similarity(tiny_pipeline):
    bi_encoder, retriever, data = tiny_pipeline
    results = (retriever >> BoltirTextLoader(data) >> BoltirReRanker(bi_encoder))(beir_topics(data))
    first = retriever(beir_topics(data)).set_index(["qid", "docno"])["score"]
    again = results.set_index(["qid", "docno"])["score"]
    assert again.loc[first.index].tolist() == pytest.approx(first.tolist(), abs=1e-5)


def test_helpers_read_beir_topics_and_qrels(tiny_beir):
    topics, qrels = beir_topics(tiny_beir), beir_qrels(tiny_beir)
    assert topics.to_dict("list") == {"qid": ["q1", "q2", "q3"],
                                      "query": ["what is the capital of germany", "what causes the ocean tide", "neural ranking"]}
    assert qrels.to_dict("list") == {"qid": ["q1", "q2", "q3"], "docno": ["d1", "d3", "d6"], "label": [1, 1, 1]}


def test_missing_columns_and_unknown_docnos_fail_clearly(tiny_pipeline, tiny_bert_dir):
    _, retriever, data = tiny_pipeline
    with pytest.raises(ConfigError, match="needs the columns"):
        retriever(pd.DataFrame({"qid": ["q1"]}))
    with pytest.raises(ConfigError, match="not in the corpus"):
        BoltirTextLoader(data)(pd.DataFrame({"qid": ["q1"], "docno": ["nope"]}))
    with pytest.raises(ConfigError, match="text"):
        BoltirReRanker(CrossEncoderModule(tiny_bert_dir))(pd.DataFrame({"qid": ["q1"], "query": ["a"], "docno": ["d1"]}))


def _scifact_subset(root, folder, queries: int, extra_docs: int):
    """The first ``queries`` SciFact test queries, their judged documents and ``extra_docs`` others, as a BEIR folder."""
    qrels = read_qrels(root / "qrels" / "test.tsv")
    keep = list(qrels)[:queries]
    judged = {d for q in keep for d in qrels[q]}
    (folder / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl") as src, open(folder / "corpus.jsonl", "w") as out:
        others = 0
        for line in src:
            doc_id = json.loads(line)["_id"]
            if doc_id in judged or others < extra_docs:
                out.write(line)
                others += doc_id not in judged
    (folder / "queries.jsonl").write_text((root / "queries.jsonl").read_text())
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q in keep for d, r in qrels[q].items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.slow
def test_experiment_on_scifact_matches_boltir_search_and_re_rank(minilm_dir, tmp_path):
    """SciFact test (a CI-sized subset: 10 queries, their judged documents + 100 others, documents cut to 128 tokens;
    re-rank depth 5) with the packaged MiniLM bi-encoder and the MS MARCO MiniLM-L12 cross-encoder: pt.Experiment's
    nDCG@10 is boltir's own search and re-rank, to 1e-4."""
    data = _scifact_subset(SCIFACT_DIR, tmp_path / "scifact", queries=10, extra_docs=100)
    trainer = Trainer(logger=False, enable_progress_bar=False)
    bi_encoder = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2", config_overrides={"doc_length": 128})
    cross_encoder = CrossEncoderModule("cross-encoder/ms-marco-MiniLM-L-12-v2", config_overrides={"max_length": 128})
    trainer.index(bi_encoder, DataModule(DocDataset(data)), tmp_path / "index")
    searched = trainer.search(bi_encoder, DataModule(QueryDataset(data)), tmp_path / "index", k=100,
                              run_path=tmp_path / "first.run", measures=["nDCG@10"])
    reranked = trainer.re_rank(cross_encoder, DataModule(RunDataset(tmp_path / "first.run", data, data, depth=5)),
                               run_path=tmp_path / "reranked.run", measures=["nDCG@10"])
    ours = [next(iter(callback.results.values()))["nDCG@10"] for callback in (searched, reranked)]
    retriever = BoltirRetriever(bi_encoder, tmp_path / "index", k=100)
    pipeline = retriever % 5 >> BoltirTextLoader(data) >> BoltirReRanker(cross_encoder)
    table = pt.Experiment([retriever, pipeline], beir_topics(data), beir_qrels(data), [NDCG10])
    assert table["nDCG@10"].tolist() == pytest.approx(ours, abs=1e-4)
    assert ours[0] > 0.5  # real models, a real ranking
