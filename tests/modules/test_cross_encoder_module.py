"""Re-ranking with cross-encoders end to end (Python and CLI, after a BM25 first stage) and bad input."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from boltir import (
    BM25IndexConfig,
    BM25Module,
    ConfigError,
    CrossEncoderConfig,
    CrossEncoderModule,
    DataModule,
    DocDataset,
    QueryDataset,
    Run,
    RunDataset,
    Trainer,
    UnknownIdError,
)
from boltir.cli import main
from boltir.index import read_manifest


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)


@pytest.mark.parametrize("attention", ["full", "sparse", "set"])
def test_bm25_then_cross_encoder_re_rank(tiny_bert_dir, tiny_beir, tmp_path, attention):
    trainer = _trainer()
    trainer.index(BM25Module(), DataModule(DocDataset(tiny_beir)), tmp_path / "bm25", BM25IndexConfig())
    first = trainer.search(BM25Module(), DataModule(QueryDataset(tiny_beir)), tmp_path / "bm25", k=5,
                           run_path=tmp_path / "bm25.run")
    config = CrossEncoderConfig(attention=attention, window=2 if attention == "sparse" else None)
    module = CrossEncoderModule(tiny_bert_dir, config=config, encode_batch_size=2)
    data = DataModule(RunDataset(tmp_path / "bm25.run", tiny_beir, tiny_beir, depth=5), inference_batch_size=2)
    callback = trainer.re_rank(module, data, run_path=tmp_path / "ce.run")
    reranked, bm25 = Run.from_trec(tmp_path / "ce.run"), first.runs[0]
    assert {q: {d for d, _ in reranked[q]} for q in reranked} == {q: {d for d, _ in bm25[q]} for q in bm25}
    assert [set(r) for r in callback.results.values()] == [{"nDCG@10", "RR@10", "R@100"}]


def test_long_candidate_lists_stream_in_batches(tiny_bert_dir):
    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=3).eval()
    docs = [f"document {i} about the {w} of the city" for i, w in enumerate(["capital", "river", "bank"] * 7)]
    calls = []
    forward = module.model.forward
    module.model.forward = lambda batch: calls.append(len(batch)) or forward(batch)
    with torch.no_grad():
        streamed = module.rank_scores(["capital of germany"], [docs])[0]
    assert max(calls) == 3 and sum(calls) == 21
    module.encode_batch_size = 64
    with torch.no_grad():
        torch.testing.assert_close(module.rank_scores(["capital of germany"], [docs])[0], streamed, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attention", ["full", "set"])
def test_empty_candidate_lists(tiny_bert_dir, attention):
    module = CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(attention=attention))
    with pytest.raises(ConfigError, match="candidate list .* is empty"):
        module.score("capital of germany", [])
    scores = module.rank_scores(["a", "capital of germany", "b"], [[], ["berlin", "paris"], []])
    assert [s.shape[0] for s in scores] == [0, 2, 0]


def test_rank_scores_keep_gradients_for_training(tiny_bert_dir):
    module = CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(attention="set"))
    scores = module.rank_scores(["capital of germany"], [["berlin", "paris", "tide"]])
    scores[0].sum().backward()
    assert module.model.head.weight.grad is not None


def test_run_with_unknown_ids_is_refused(tiny_bert_dir, tiny_beir, tmp_path):
    Run({"q1": {"d1": 1.0, "d99": 0.5}}).to_trec(tmp_path / "bad-doc.run")
    with pytest.raises(UnknownIdError, match="d99"):
        RunDataset(tmp_path / "bad-doc.run", tiny_beir, tiny_beir)
    Run({"q42": {"d1": 1.0}}).to_trec(tmp_path / "bad-query.run")
    with pytest.raises(UnknownIdError, match="q42"):
        RunDataset(tmp_path / "bad-query.run", tiny_beir, tiny_beir)


def _write(tmp_path, name, config):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_cli_bm25_then_cross_encoder(tiny_bert_dir, tiny_beir, tmp_path, capsys):
    trainer = {"accelerator": "cpu", "enable_progress_bar": False}
    bm25 = {"class_path": "boltir.BM25Module"}
    index = {"model": bm25, "trainer": trainer, "index_dir": str(tmp_path / "bm25"),
             "data": {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": [
                 {"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]}},
             "index_config": {"class_path": "boltir.BM25IndexConfig", "init_args": {"k1": 0.9, "b": 0.4}}}
    main(["index", "--config", _write(tmp_path, "index.yaml", index)])
    assert read_manifest(tmp_path / "bm25")["index_config"]["k1"] == 0.9
    search = {"model": bm25, "trainer": trainer, "index_dir": str(tmp_path / "bm25"), "k": 4,
              "run_path": str(tmp_path / "bm25.run"),
              "data": {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": [
                  {"class_path": "boltir.QueryDataset", "init_args": {"source": str(tiny_beir)}}]}}}
    main(["search", "--config", _write(tmp_path, "search.yaml", search)])
    re_rank = {
        "model": {"class_path": "boltir.CrossEncoderModule", "init_args": {
            "model_name_or_path": str(tiny_bert_dir), "encode_batch_size": 4,
            "config": {"class_path": "boltir.CrossEncoderConfig", "init_args": {"attention": "sparse", "window": 4}}}},
        "trainer": trainer, "run_path": str(tmp_path / "ce.run"),
        "data": {"class_path": "boltir.DataModule", "init_args": {"inference_batch_size": 2, "inference_datasets": [
            {"class_path": "boltir.RunDataset", "init_args": {
                "run": str(tmp_path / "bm25.run"), "queries": str(tiny_beir), "corpus": str(tiny_beir), "depth": 4}}]}},
    }
    main(["re_rank", "--config", _write(tmp_path, "re_rank.yaml", re_rank)])
    assert sorted(Run.from_trec(tmp_path / "ce.run").query_ids) == ["q1", "q2", "q3"]
    assert "nDCG@10" in capsys.readouterr().out


TOY = [
    ("what is the capital of germany", "berlin is the capital of germany", ["paris is the capital of france", "the moon causes the ocean tide", "genes in cells"]),
    ("what causes the ocean tide", "the moon causes the ocean tide", ["berlin is the capital of germany", "drug treatment of the brain", "paris"]),
    ("neural ranking models", "neural ranking models learn to rank documents", ["the moon causes the ocean tide", "genes increase cancer risk", "paris"]),
    ("brain drug in mice", "drug treatment of the brain in mice", ["neural ranking models", "berlin is the capital", "the ocean tide"]),
]


def _toy_lists(tmp_path):
    from boltir import TupleDataset

    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps({"query": q, "pos": [p], "neg": n}) for q, p, n in TOY) + "\n")
    return TupleDataset(path, list_size=4)


def _mean_loss(module, dataset) -> float:
    from boltir.data import collate

    module.eval()
    with torch.no_grad():
        return float(sum(module.training_losses(collate([dataset[i] for i in range(len(dataset))])).values()))


@pytest.mark.parametrize(("attention", "loss"), [("set", "listnet"), ("set", "approx_ndcg"), ("sparse", "infonce")])
def test_listwise_training_runs_end_to_end(tiny_bert_dir, tmp_path, attention, loss):
    import lightning.pytorch as pl

    pl.seed_everything(0)
    config = CrossEncoderConfig(attention=attention, window=2 if attention == "sparse" else None)
    module = CrossEncoderModule(tiny_bert_dir, config=config, loss_functions=loss)
    module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=3e-3)  # a random tiny model
    lists = _toy_lists(tmp_path)
    before = _mean_loss(module, lists)
    fit = Trainer(max_steps=12, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    fit.fit(module, datamodule=DataModule(train_dataset=lists, batch_size=2))
    assert fit.global_step == 12 and _mean_loss(module, lists) < before
    module.save_pretrained(tmp_path / "trained")
    assert CrossEncoderModule(tmp_path / "trained").config.attention == attention


def test_cli_fit_a_cross_encoder_then_re_rank(tiny_bert_dir, tiny_train_beir, tmp_path, capsys):
    beir = str(tiny_train_beir)
    run = f"{beir}/first-stage.run"
    fit = {
        "seed_everything": 0,
        "model": {"class_path": "boltir.CrossEncoderModule", "init_args": {
            "model_name_or_path": str(tiny_bert_dir), "loss_functions": "ranknet", "encode_batch_size": 8}},
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.001}},
        "data": {"class_path": "boltir.DataModule", "init_args": {
            "batch_size": 2,
            "train_dataset": {"class_path": "boltir.RunTupleDataset", "init_args": {
                "run": run, "queries": beir, "corpus": beir, "split": "train", "list_size": 3}},
            "val_datasets": [{"class_path": "boltir.RunDataset", "init_args": {"run": run, "queries": beir, "corpus": beir}}]}},
        "trainer": {"max_steps": 3, "logger": False, "enable_progress_bar": False, "callbacks": [
            {"class_path": "boltir.ModelDirCheckpoint", "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True}}]},
    }
    main(["fit", "--config", _write(tmp_path, "fit.yaml", fit)])
    trained = tmp_path / "ckpt" / "last"
    assert (trained / "boltir_config.json").is_file()
    re_rank = {
        "model": {"class_path": "boltir.CrossEncoderModule", "init_args": {"model_name_or_path": str(trained)}},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False}, "run_path": str(tmp_path / "ce.run"),
        "data": {"class_path": "boltir.DataModule", "init_args": {"inference_datasets": [
            {"class_path": "boltir.RunDataset", "init_args": {"run": run, "queries": beir, "corpus": beir}}]}},
    }
    main(["re_rank", "--config", _write(tmp_path, "re_rank.yaml", re_rank)])
    assert sorted(Run.from_trec(tmp_path / "ce.run").query_ids) == ["q1", "q2", "q3"]


def test_pairs_are_regrouped_by_token_count(tiny_bert_dir):
    """Pairs are tokenised a window at a time and regrouped by token count: every batch is cut to its own longest
    pair, and each score equals the pair's score alone (no padding at all)."""
    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=2).eval()
    # by characters: berlin x9, capital x3, the long unknown word, ...; by tokens the unknown word leads
    # (one token per letter)
    docs = ["berlin " * 9, "tide", "capital of germany " * 3, "supercalifragilistic" * 2, "ocean", "berlin berlin"]
    widths, forward = [], module.model.forward
    module.model.forward = lambda batch: widths.append(
        (batch.inputs["input_ids"].shape[1], int(batch.inputs["attention_mask"].sum(1).max()))) or forward(batch)
    with torch.no_grad():
        scores = module.rank_scores(["capital of germany"], [docs])[0]
        module.encode_batch_size = 1
        alone = torch.stack([module.rank_scores(["capital of germany"], [[d]])[0][0] for d in docs])
    torch.testing.assert_close(scores, alone, atol=1e-5, rtol=1e-4)
    regrouped = widths[: len(widths) - len(docs)]
    assert all(width == longest for width, longest in regrouped)  # no column of padding alone
    assert [w for w, _ in regrouped] == sorted((w for w, _ in regrouped), reverse=True)


@pytest.mark.parametrize("left", [False, True])
def test_pair_batch_by_length_trims_each_piece(left):
    from boltir.models.cross_encoder.model import PairBatch

    lengths = [2, 5, 3, 4]
    mask = torch.tensor([[0] * (5 - n) + [1] * n if left else [1] * n + [0] * (5 - n) for n in lengths])
    ids = mask * torch.arange(1, 6)
    batch = PairBatch({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})
    pieces = batch.by_length(2, left)
    assert [rows.tolist() for rows, _ in pieces] == [[1, 3], [2, 0]]
    assert [piece.inputs["input_ids"].shape for _, piece in pieces] == [(2, 5), (2, 3)]
    for rows, piece in pieces:
        for row, kept in zip(rows.tolist(), piece.inputs["input_ids"]):
            assert kept[kept > 0].tolist() == ids[row][ids[row] > 0].tolist()
    sparse = PairBatch({"input_ids": ids, "attention_mask": mask}, query_tokens=2)
    assert len(sparse.by_length(2, left)) == 1


def test_pointwise_rank_scores_keep_gradients_for_training(tiny_bert_dir):
    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=2)
    scores = module.rank_scores(["capital of germany"], [["berlin", "paris is the capital of france", "tide"]])
    scores[0].sum().backward()
    assert module.model.head.weight.grad is not None
