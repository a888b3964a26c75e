"""``boltir fit --config x.yaml`` end to end on a tiny model: train, validate, checkpoint, resume, reload."""

from __future__ import annotations

import pytest
import torch

from boltir import BiEncoderModule
from boltir.cli.main import main

CONFIG = """
seed_everything: 3
model:
  class_path: boltir.BiEncoderModule
  init_args:
    model_name_or_path: {model}
    loss_functions: {{name: infonce, temperature: 0.1}}
    in_batch_loss: {{name: infonce, temperature: 0.1}}
    val_measures: [nDCG@10]
optimizer:
  class_path: torch.optim.AdamW
  init_args: {{lr: 0.001, weight_decay: 0.01}}
lr_scheduler:
  class_path: boltir.LinearWarmupDecay
  init_args: {{warmup_steps: 1}}
data:
  class_path: boltir.DataModule
  init_args:
    train_dataset:
      class_path: boltir.RunTupleDataset
      init_args: {{run: {beir}/first-stage.run, queries: {beir}, corpus: {beir}, split: train, list_size: 3, rank_window: [0, 4]}}
    val_datasets:
      - class_path: boltir.RunDataset
        init_args: {{run: {beir}/first-stage.run, queries: {beir}, corpus: {beir}, split: test}}
    batch_size: 2
trainer:
  max_steps: 4
  logger: false
  enable_progress_bar: false
  val_check_interval: 2
  check_val_every_n_epoch: null
  callbacks:
    - class_path: boltir.ModelDirCheckpoint
      init_args: {{dirpath: {out}, monitor: val/nDCG@10, mode: max, save_last: true, save_top_k: -1}}
"""


@pytest.fixture()
def fit_config(tmp_path, tiny_bert_dir, tiny_train_beir):
    path = tmp_path / "fit.yaml"
    path.write_text(CONFIG.format(model=tiny_bert_dir, beir=tiny_train_beir, out=tmp_path / "ckpt"))
    return path


def test_fit_from_yaml_trains_validates_and_saves_model_directories(fit_config, tmp_path):
    main(["fit", "--config", str(fit_config)])
    ckpt = tmp_path / "ckpt"
    assert {"last.ckpt", "last", "epoch=1-step=4.ckpt", "epoch=1-step=4", "epoch=0-step=2.ckpt"} <= {p.name for p in ckpt.iterdir()}
    state = torch.load(ckpt / "last.ckpt", weights_only=True)
    assert state["global_step"] == 4
    scheduler = state["lr_schedulers"][0]
    assert scheduler["last_epoch"] == 4 and scheduler["total_steps"] == 4  # stepped per step, length from max_steps
    checkpointing = next(v for k, v in state["callbacks"].items() if k.startswith("ModelDirCheckpoint"))
    assert 0 < float(checkpointing["best_model_score"]) <= 1  # validation logged val/nDCG@10 to monitor
    module = BiEncoderModule(ckpt / "last")
    assert module.score("capital of germany", ["berlin", "paris"]).scores.shape == (2,)

    # resume: the same run continues from step 4 to step 6 with its optimiser state
    main(["fit", "--config", str(fit_config), "--ckpt_path", "last", "--trainer.max_steps", "6"])
    resumed = torch.load(ckpt / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 6
    adam = resumed["optimizer_states"][0]["state"]
    assert all(float(s["step"]) == 6 for s in adam.values())


def test_fit_with_an_unknown_loss_names_it(fit_config, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(fit_config), "--model.init_args.loss_functions", "infonse"])
    assert "unknown loss 'infonse'" in capsys.readouterr().err
