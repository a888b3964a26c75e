"""ModelDirCheckpoint through Lightning's public hooks: each checkpoint's model directory follows its file."""

from __future__ import annotations

import json

import torch

from boltir import BiEncoderModule, DataModule, ModelDirCheckpoint, Trainer, TupleDataset

TOY = [
    ("capital of germany", "berlin is the capital of germany", ["paris is in france", "the moon"]),
    ("ocean tide", "the moon causes the ocean tide", ["berlin", "drug treatment"]),
    ("ranking models", "neural models rank documents", ["the ocean tide", "genes"]),
    ("brain drug", "drug treatment of the brain", ["neural ranking", "paris"]),
]


def _fit(model_dir, tmp_path, max_steps: int, **checkpointing) -> tuple[Trainer, BiEncoderModule]:
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps({"query": q, "pos": [p], "neg": n}) for q, p, n in TOY) + "\n")
    module = BiEncoderModule(model_dir)
    fit = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, max_steps=max_steps,
                  callbacks=[ModelDirCheckpoint(dirpath=tmp_path / "ckpt", **checkpointing)])
    fit.fit(module, datamodule=DataModule(train_dataset=TupleDataset(path, list_size=3), batch_size=2))
    return fit, module


def test_a_last_link_links_its_model_directory_and_the_trainer_gets_its_io_back(tiny_bert_dir, tmp_path):
    fit, module = _fit(tiny_bert_dir, tmp_path, max_steps=3, every_n_train_steps=1, save_top_k=2, monitor="step",
                       mode="max", save_last="link")
    ckpt = tmp_path / "ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "epoch=0-step=2", "epoch=0-step=2.ckpt", "epoch=1-step=3", "epoch=1-step=3.ckpt", "last", "last.ckpt"]
    assert (ckpt / "last.ckpt").is_symlink() and (ckpt / "last.ckpt").resolve() == (ckpt / "epoch=1-step=3.ckpt").resolve()
    assert (ckpt / "last").is_symlink() and (ckpt / "last").resolve() == (ckpt / "epoch=1-step=3").resolve()
    assert BiEncoderModule(ckpt / "last").config == module.config
    assert "ModelDirWriter" not in type(fit.strategy.checkpoint_io).__name__  # restored after fit


def test_weights_only_checkpoints_are_model_directories_too(tiny_bert_dir, tmp_path):
    _, module = _fit(tiny_bert_dir, tmp_path, max_steps=2, every_n_train_steps=1, save_top_k=0, save_last=True,
                     save_weights_only=True)
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 2 and "optimizer_states" not in state
    reloaded = BiEncoderModule(tmp_path / "ckpt" / "last")
    texts = ["berlin is the capital of germany", "the moon"]
    torch.testing.assert_close(reloaded.score("capital of germany", texts).scores, module.score("capital of germany", texts).scores)
