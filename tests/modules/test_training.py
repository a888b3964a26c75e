"""Training through Lightning: losses go down, in-batch negatives, validation, checkpoints and exact resumption."""

from __future__ import annotations

import json
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor

from boltir import (
    BiEncoderConfig,
    BiEncoderModule,
    ConfigError,
    DataModule,
    LinearWarmupDecay,
    ModelDirCheckpoint,
    RunDataset,
    RunTupleDataset,
    Trainer,
    TupleDataset,
)
from boltir.data import TrainBatch, collate
from boltir.loss import InfoNCELoss
from boltir.modules import BoltirModule

TOY = [
    ("what is the capital of germany", "berlin is the capital of germany", ["paris is the capital of france", "the moon causes the ocean tide", "genes in cells"]),
    ("what causes the ocean tide", "the moon causes the ocean tide", ["berlin is the capital of germany", "drug treatment of the brain", "paris"]),
    ("neural ranking models", "neural ranking models learn to rank documents", ["the moon causes the ocean tide", "genes increase cancer risk", "paris"]),
    ("brain drug in mice", "drug treatment of the brain in mice", ["neural ranking models", "berlin is the capital", "the ocean tide"]),
]


@pytest.fixture()
def toy_tuples(tmp_path) -> TupleDataset:
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps({"query": q, "pos": [p], "neg": n}) for q, p, n in TOY) + "\n")
    return TupleDataset(path, list_size=4)


def trainer(**kwargs) -> Trainer:
    options = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}
    return Trainer(**{**options, **kwargs})


def fast(module: BoltirModule, lr: float = 3e-3) -> BoltirModule:
    """A random tiny model needs a larger learning rate than the default 2e-5 for pretrained weights."""
    module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=lr)  # type: ignore[method-assign]
    return module


def mean_loss(module: BiEncoderModule, dataset: TupleDataset) -> float:
    batch = collate([dataset[i] for i in range(len(dataset))])
    module.eval()
    with torch.no_grad():
        return float(sum(module.training_losses(batch).values()))


def test_fit_lowers_the_loss_on_a_toy_set(tiny_bert_dir, toy_tuples):
    pl.seed_everything(0)
    module = fast(BiEncoderModule(tiny_bert_dir, loss_functions={"name": "infonce", "temperature": 0.1}))
    before = mean_loss(module, toy_tuples)
    trainer(max_steps=12).fit(module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2))
    assert mean_loss(module, toy_tuples) < 0.8 * before


def test_training_batches_tokenised_in_workers_give_the_same_losses(tiny_bert_dir, toy_tuples):
    module = BiEncoderModule(tiny_bert_dir, in_batch_loss={"name": "infonce", "temperature": 0.1}).eval()
    module.encode_batch_size = 3  # several length-sorted chunks per side (the 16 documents, the 4 queries)
    batch = collate([toy_tuples[i] for i in range(len(toy_tuples))])
    tokenised = module.batch_transform()(collate([toy_tuples[i] for i in range(len(toy_tuples))]))
    assert tokenised.doc_tokens is not None and len(tokenised.doc_tokens.chunks) > 1
    assert tokenised.query_tokens is not None and len(tokenised.query_tokens.chunks) == 2
    with torch.no_grad():
        from_texts, from_tokens = module.training_losses(batch), module.training_losses(tokenised)
    assert from_texts.keys() == from_tokens.keys() == {"ranking", "in_batch"}
    for name in from_texts:
        torch.testing.assert_close(from_tokens[name], from_texts[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("workers", [0, 2])
def test_fit_receives_batches_tokenised_by_the_data_loader(tiny_bert_dir, toy_tuples, workers):
    seen: list[TrainBatch] = []

    class Recording(BiEncoderModule):
        def training_losses(self, batch: TrainBatch) -> dict[str, Tensor]:
            seen.append(batch)
            return super().training_losses(batch)

    pl.seed_everything(0)
    module = fast(Recording(tiny_bert_dir, loss_functions={"name": "infonce", "temperature": 0.1}))
    before = mean_loss(module, toy_tuples)
    trainer(max_steps=6).fit(module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2, num_workers=workers))
    tokenised = [b for b in seen if b.doc_tokens is not None and b.query_tokens is not None]
    assert len(seen) == 6 + 1 and len(tokenised) == 6  # every training step (the +1 is mean_loss's text batch)
    assert mean_loss(module, toy_tuples) < before


def test_any_family_trains_through_rank_scores(tiny_bert_dir, toy_tuples):
    """The base training step needs only rank_scores (what cross-encoders implement)."""

    class RankScoresOnly(BiEncoderModule):
        training_losses = BoltirModule.training_losses

    pl.seed_everything(0)
    module = fast(RankScoresOnly(tiny_bert_dir, loss_functions=[{"name": "infonce", "temperature": 0.1}, {"name": "ranknet", "weight": 0.5}]))
    before = mean_loss(module, toy_tuples)
    fit = trainer(max_steps=12)
    fit.fit(module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2))
    assert set(fit.callback_metrics) >= {"train/ranking", "train/loss"}
    assert mean_loss(module, toy_tuples) < before


class Recorder(InfoNCELoss):
    """InfoNCE that keeps the last scores and targets it saw."""

    def forward(self, scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        self.seen = (scores, targets)
        return super().forward(scores, targets, mask)


def test_in_batch_negatives_score_every_query_against_every_document(tiny_bert_dir, toy_tuples):
    module = BiEncoderModule(tiny_bert_dir, loss_functions=None, in_batch_loss=Recorder())
    batch = collate([toy_tuples[i] for i in range(3)])
    losses = module.training_losses(batch)
    scores, targets = module.in_batch_loss.seen
    assert set(losses) == {"in_batch"} and scores.shape == targets.shape == (3, 12)
    expected = torch.zeros(3, 12)
    expected[[0, 1, 2], [0, 4, 8]] = 1.0  # each query's own positive: the first document of its list
    torch.testing.assert_close(targets, expected)
    own = torch.stack(module.rank_scores(batch.queries, batch.docs))
    torch.testing.assert_close(scores.view(3, 3, 4)[[0, 1, 2], [0, 1, 2]], own, atol=1e-5, rtol=1e-4)


def test_in_batch_negatives_gather_across_devices_with_local_gradients(tiny_bert_dir, toy_tuples):
    module = BiEncoderModule(tiny_bert_dir, loss_functions=None, in_batch_loss=Recorder())
    other = {}  # what the second device holds: random vectors without gradients

    def fake_all_gather(tensor: Tensor) -> Tensor:
        other.setdefault(tensor.shape, torch.randn(tensor.shape))
        return torch.stack([tensor, other[tensor.shape]])

    module._trainer = SimpleNamespace(world_size=2, global_rank=0)
    module.all_gather = fake_all_gather  # type: ignore[method-assign]
    try:
        batch = collate([toy_tuples[i] for i in range(2)])
        loss = module.training_losses(batch)["in_batch"]
        scores, targets = module.in_batch_loss.seen
    finally:
        module._trainer = None
    assert scores.shape == (4, 16)  # 2 devices x 2 queries against 2 x 2 x 4 documents
    assert targets[2, 8] == 1.0 and targets[3, 12] == 1.0  # the other device's queries keep their own positives
    torch.testing.assert_close(loss, 2 * InfoNCELoss()(scores, targets))  # scaled by the world size
    loss.backward()
    grads = {n: p.grad for n, p in module.model.backbone.named_parameters() if not n.startswith("pooler.")}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_regularisers_add_weighted_terms(tiny_bert_dir, toy_tuples):
    from boltir.loss import FLOPSRegulariser, L1Regulariser

    module = BiEncoderModule(tiny_bert_dir, doc_regulariser=FLOPSRegulariser(0.5), query_regulariser=L1Regulariser(0.1, warmup_steps=10))
    losses = module.training_losses(collate([toy_tuples[0], toy_tuples[1]]))
    assert set(losses) == {"ranking", "doc_regulariser", "query_regulariser"}
    assert losses["doc_regulariser"] > 0 and losses["query_regulariser"] == 0  # step 0 of a quadratic warm-up


def test_bad_loss_options_are_named(tiny_bert_dir):
    with pytest.raises(ConfigError, match="unknown loss 'infonse'"):
        BiEncoderModule(tiny_bert_dir, loss_functions="infonse")
    with pytest.raises(ConfigError, match="in_batch_loss"):
        BiEncoderModule(tiny_bert_dir, loss_functions=None)
    with pytest.raises(ConfigError, match="nDCG@ten"):
        BiEncoderModule(tiny_bert_dir, val_measures=["nDCG@ten"])


def test_linear_warmup_decay_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = LinearWarmupDecay(optimizer, warmup_steps=3, total_steps=7)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ConfigError, match="warmup_steps"):
        LinearWarmupDecay(optimizer, warmup_steps=-1)


def test_linear_warmup_decay_learns_the_length_of_training():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = LinearWarmupDecay(optimizer)
    assert optimizer.param_groups[0]["lr"] == 1.0
    scheduler.step()
    scheduler.fit_to(4)  # e.g. resumed with a new max_steps: the current lr follows at once
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.75)
    fixed = LinearWarmupDecay(optimizer, total_steps=10)
    fixed.fit_to(4)
    assert fixed.total_steps == 10


def test_validation_logs_ir_measures(tiny_train_beir, tiny_bert_dir):
    train = RunTupleDataset(tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="train", list_size=3)
    val = RunDataset(tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="test")
    module = BiEncoderModule(tiny_bert_dir, val_measures=["nDCG@10", "RR@10"])
    fit = trainer(max_epochs=1, num_sanity_val_steps=0)
    fit.fit(module, datamodule=DataModule(train_dataset=train, val_datasets=[val], batch_size=2))
    assert {"val/nDCG@10", "val/RR@10"} <= set(fit.callback_metrics)
    assert 0 < float(fit.callback_metrics["val/nDCG@10"]) <= 1


def test_gradient_checkpointing_and_half_weights_train(tiny_bert_dir, toy_tuples, tmp_path):
    module = BiEncoderModule(tiny_bert_dir, gradient_checkpointing=True)
    assert module.model.backbone.is_gradient_checkpointing
    module.model.half()  # e.g. weights shipped in fp16
    trainer(max_steps=2).fit(module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2))
    assert all(p.dtype == torch.float32 for p in module.parameters())


# -- checkpoints and resumption -------------------------------------------------------------------
def _fit(model_dir, dataset, max_steps: int, ckpt_dir=None, ckpt_path=None):
    pl.seed_everything(7)
    module = BiEncoderModule(model_dir, in_batch_loss={"name": "infonce", "temperature": 0.1})
    module.configure_optimizers = lambda: {  # type: ignore[method-assign]
        "optimizer": (opt := torch.optim.AdamW(module.parameters(), lr=1e-3)),
        "lr_scheduler": {"scheduler": LinearWarmupDecay(opt, warmup_steps=2), "interval": "step"},
    }
    callbacks = [ModelDirCheckpoint(dirpath=ckpt_dir, every_n_train_steps=1, save_last=True, save_top_k=0)] if ckpt_dir else []
    fit = trainer(max_steps=max_steps, callbacks=callbacks, enable_checkpointing=bool(ckpt_dir))
    fit.fit(module, datamodule=DataModule(train_dataset=dataset, batch_size=3), ckpt_path=ckpt_path)
    return fit, module


def test_resumed_fit_matches_an_uninterrupted_one(tiny_bert_dir, toy_tuples, tmp_path):
    # 4 queries in batches of 3: 2 steps an epoch, so stopping after 3 steps interrupts the second epoch
    straight, straight_module = _fit(tiny_bert_dir, toy_tuples, max_steps=6)
    _fit(tiny_bert_dir, toy_tuples, max_steps=3, ckpt_dir=tmp_path / "ckpt")
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 3
    resumed, resumed_module = _fit(tiny_bert_dir, toy_tuples, max_steps=6, ckpt_dir=tmp_path / "ckpt", ckpt_path="last")

    assert resumed.global_step == straight.global_step == 6
    a, b = straight.optimizers[0].state_dict(), resumed.optimizers[0].state_dict()
    assert a["param_groups"][0]["lr"] == pytest.approx(b["param_groups"][0]["lr"])
    for key, state in a["state"].items():
        assert float(state["step"]) == float(b["state"][key]["step"]) == 6
        torch.testing.assert_close(state["exp_avg"], b["state"][key]["exp_avg"])
        torch.testing.assert_close(state["exp_avg_sq"], b["state"][key]["exp_avg_sq"])
    for (name, p), q in zip(straight_module.named_parameters(), resumed_module.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_checkpoints_are_model_directories(tiny_bert_dir, toy_tuples, tmp_path):
    fit, module = _fit(tiny_bert_dir, toy_tuples, max_steps=2, ckpt_dir=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    reloaded = BiEncoderModule(tmp_path / "ckpt" / "last")
    assert reloaded.config == module.config
    texts = ["berlin is the capital of germany", "the moon"]
    torch.testing.assert_close(reloaded.score("capital of germany", texts).scores, module.score("capital of germany", texts).scores)


def test_last_is_the_final_step_whatever_the_interval(tiny_bert_dir, toy_tuples, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    checkpoint = ModelDirCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_last=True, save_top_k=0)
    trainer(max_steps=3, callbacks=[checkpoint], enable_checkpointing=True).fit(
        module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2)
    )
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert (tmp_path / "ckpt" / "last" / "boltir_config.json").is_file()


def test_top_k_checkpoints_remove_their_directories(tiny_bert_dir, toy_tuples, tmp_path):
    pl.seed_everything(0)
    module = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(similarity="dot"))
    checkpoint = ModelDirCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=1, monitor="step", mode="max")
    trainer(max_steps=3, callbacks=[checkpoint], enable_checkpointing=True).fit(
        module, datamodule=DataModule(train_dataset=toy_tuples, batch_size=2)
    )
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["epoch=1-step=3", "epoch=1-step=3.ckpt"]


def test_a_dict_config_changes_only_the_options_it_names(tiny_bert_dir, tmp_path):
    BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(normalize=True, similarity="dot")).save_pretrained(tmp_path / "m")
    module = BiEncoderModule(tmp_path / "m", config={"doc_length": 16})
    assert (module.config.doc_length, module.config.normalize, module.config.similarity) == (16, True, "dot")
    module = BiEncoderModule(tmp_path / "m", config_overrides={"doc_length": 16})  # the way from YAML
    assert (module.config.doc_length, module.config.normalize, module.config.similarity) == (16, True, "dot")
