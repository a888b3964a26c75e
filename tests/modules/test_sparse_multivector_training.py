"""SPLADE and ColBERT fine-tune through the bi-encoder training step: list and in-batch losses, FLOPS regularisation."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch

from boltir import ColBERTConfig, ColBERTModule, DataModule, SpladeModule, Trainer, TupleDataset
from boltir.data import collate
from boltir.loss import FLOPSRegulariser, in_batch_scores
from boltir.models.layers import TokenVectors

TOY = [
    ("what is the capital of germany", "berlin is the capital of germany", ["paris is the capital of france", "the moon causes the ocean tide"]),
    ("what causes the ocean tide", "the moon causes the ocean tide", ["berlin is the capital of germany", "drug treatment of the brain"]),
    ("neural ranking models", "neural ranking models learn to rank documents", ["the moon causes the ocean tide", "genes increase cancer risk"]),
    ("brain drug in mice", "drug treatment of the brain in mice", ["neural ranking models", "berlin is the capital"]),
]


@pytest.fixture()
def toy_tuples(tmp_path) -> TupleDataset:
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps({"query": q, "pos": [p], "neg": n}) for q, p, n in TOY) + "\n")
    return TupleDataset(path, list_size=3)


def _fit(module, tuples, steps: int, lr: float = 3e-3) -> None:
    module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=lr)  # random tiny models need a large lr
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", max_steps=steps)
    trainer.fit(module, datamodule=DataModule(train_dataset=tuples, batch_size=2))


def _losses(module, tuples) -> dict[str, float]:
    module.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in module.training_losses(collate([tuples[i] for i in range(len(tuples))])).items()}


def test_splade_fits_with_in_batch_negatives_and_flops(tiny_bert_mlm_dir, toy_tuples):
    pl.seed_everything(0)
    module = SpladeModule(tiny_bert_mlm_dir, loss_functions="infonce", in_batch_loss="infonce",
                          doc_regulariser=FLOPSRegulariser(1e-3), query_regulariser=FLOPSRegulariser(1e-3))
    before = _losses(module, toy_tuples)
    assert set(before) == {"ranking", "in_batch", "query_regulariser", "doc_regulariser"}
    _fit(module, toy_tuples, steps=10)
    after = _losses(module, toy_tuples)
    assert after["ranking"] + after["in_batch"] < 0.8 * (before["ranking"] + before["in_batch"])


def test_a_strong_flops_penalty_makes_document_vectors_sparser(tiny_bert_mlm_dir, toy_tuples):
    docs = [d for _, p, n in TOY for d in [p, *n]]
    pl.seed_everything(0)
    module = SpladeModule(tiny_bert_mlm_dir, loss_functions="infonce", doc_regulariser=FLOPSRegulariser(50.0))
    terms_before = int((module.encode_docs(docs) > 0).sum())
    _fit(module, toy_tuples, steps=10, lr=1e-2)
    terms_after = int((module.encode_docs(docs) > 0).sum())
    assert terms_after < 0.5 * terms_before


def test_colbert_fits_with_list_and_in_batch_losses(tiny_bert_dir, toy_tuples):
    pl.seed_everything(0)
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=16, query_length=8),
                           loss_functions="infonce", in_batch_loss="infonce")
    before = _losses(module, toy_tuples)
    assert set(before) == {"ranking", "in_batch"}
    _fit(module, toy_tuples, steps=10)
    after = _losses(module, toy_tuples)
    assert after["ranking"] + after["in_batch"] < 0.8 * (before["ranking"] + before["in_batch"])


def test_in_batch_scores_take_token_vectors(tiny_bert_dir):
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=8))
    queries = module.encode_queries(["capital of germany", "ocean tide"])
    docs = module.encode_docs(["berlin", "paris", "the moon causes the tide", "brain"])
    scores, targets = in_batch_scores(queries, docs, 2, module.model.score)
    assert scores.shape == (2, 4) and targets[0].tolist() == [1, 0, 0, 0] and targets[1].tolist() == [0, 0, 1, 0]
    torch.testing.assert_close(scores, module.model.score(queries, docs))
    assert isinstance(module.gather(queries), TokenVectors)  # one device: the batch itself
