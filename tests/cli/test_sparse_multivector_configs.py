"""The shipped SPLADE and ColBERT YAML configs run through ``boltir index`` / ``boltir search``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from boltir.cli.main import main
from boltir.index import read_manifest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _retarget(name: str, tmp_path: Path, model_dir: Path, beir: Path, **top: object) -> Path:
    """The shipped config with the model, data and output paths pointed at tiny test fixtures."""
    config = yaml.safe_load((CONFIGS / name).read_text())
    config["model"]["init_args"]["model_name_or_path"] = str(model_dir)
    for dataset in config["data"]["init_args"]["inference_datasets"]:
        dataset["init_args"]["source"] = str(beir)
    config["trainer"].update(accelerator="cpu", enable_progress_bar=False)
    config.update(top)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def test_splade_index_and_search_configs(tiny_bert_mlm_dir, tiny_beir, tmp_path):
    index_dir = tmp_path / "index"
    main(["index", "--config", str(_retarget("scifact-splade-index.yaml", tmp_path, tiny_bert_mlm_dir, tiny_beir, index_dir=str(index_dir)))])
    assert read_manifest(index_dir)["engine"] == "seismic"
    search = _retarget("scifact-splade-search.yaml", tmp_path, tiny_bert_mlm_dir, tiny_beir, index_dir=str(index_dir),
                       run_dir=str(tmp_path / "runs"), run_path=None)
    main(["search", "--config", str(search), "--search_settings", '{"heap_factor": 0.5}'])
    metrics = json.loads((tmp_path / "runs" / "tiny-beir-test.metrics.json").read_text())
    assert set(metrics) == {"nDCG@10", "RR@10", "R@100"}


def test_colbert_index_config(tiny_bert_dir, tiny_beir, tmp_path):
    path = _retarget("scifact-colbert-index.yaml", tmp_path, tiny_bert_dir, tiny_beir, index_dir=str(tmp_path / "index"))
    config = yaml.safe_load(path.read_text())
    config["model"]["init_args"]["config"]["init_args"].update(query_marker=None, doc_marker=None)  # the tiny vocabulary has no [unused*]
    path.write_text(yaml.safe_dump(config))
    main(["index", "--config", str(path)])
    manifest = read_manifest(tmp_path / "index")
    assert manifest["engine"] == "multivector-exact" and manifest["fingerprint"]["representation"] == "multi-vector"
    assert manifest["dim"] == 32  # embedding_dim null: the backbone's hidden size



@pytest.mark.parametrize(("name", "fixture"), [("scifact-splade-fit.yaml", "tiny_bert_mlm_dir"), ("scifact-colbert-fit.yaml", "tiny_bert_dir")])
def test_fit_configs_train_and_save_their_family(name, fixture, request, tiny_train_beir, tmp_path):
    text = (CONFIGS / name).read_text()
    family = "splade" if "splade" in name else "colbert"
    model = {"splade": "boltir/splade-tiny", "colbert": "boltir/answerai-colbert-small-backbone"}[family]
    for old, new in (("../../shared/data/scifact", tiny_train_beir), ("../runs/scifact-minilm-train.run", tiny_train_beir / "first-stage.run"),
                     (f"../outputs/scifact-{family}-fit", tmp_path / "fit"), (model, request.getfixturevalue(fixture))):
        text = text.replace(old, str(new))
    config = yaml.safe_load(text)
    if family == "colbert":  # the tiny vocabulary has no [unused*] markers
        config["model"]["init_args"]["config"]["init_args"].update(query_marker=None, doc_marker=None)
    config["data"]["init_args"].update(batch_size=2, num_workers=0)
    config["data"]["init_args"]["train_dataset"]["init_args"].update(list_size=3, rank_window=[0, 6])
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path), "--trainer.max_steps", "2", "--trainer.accelerator", "cpu",
          "--trainer.precision", "32-true", "--trainer.enable_progress_bar", "false"])
    saved = json.loads((tmp_path / "fit" / "checkpoints" / "last" / "boltir_config.json").read_text())
    assert saved["family"] == family
