"""Long-document options through the YAML CLI: a segmented model indexes segments and searches documents."""

from __future__ import annotations

import json

from boltir import Run
from boltir.cli import main
from boltir.index import read_manifest

from .test_cli import _config


def test_sedr_config_from_yaml_indexes_segments_and_searches_documents(tiny_bert_dir, tiny_beir, tmp_path):
    model_config = {"class_path": "boltir.BiEncoderConfig",
                    "init_args": {"doc_length": 6, "segments": {"aggregation": "sedr", "max_segments": 3}}}
    index_dir, run_dir = tmp_path / "index", tmp_path / "runs"
    docs = [{"class_path": "boltir.DocDataset", "init_args": {"source": str(tiny_beir)}}]
    config = _config(tmp_path, tiny_bert_dir, docs, index_dir=str(index_dir))
    main(["index", "--config", str(config), "--model.init_args.config", json.dumps(model_config)])
    manifest = read_manifest(index_dir)
    assert manifest["segments"] and manifest["documents"] == 6 and manifest["count"] > 6
    assert manifest["fingerprint"]["segments"] == "sedr"

    queries = [{"class_path": "boltir.QueryDataset", "init_args": {"source": str(tiny_beir), "split": "test"}}]
    config = _config(tmp_path, tiny_bert_dir, queries, index_dir=str(index_dir), run_dir=str(run_dir), k=10)
    main(["search", "--config", str(config), "--model.init_args.config", json.dumps(model_config)])
    run = Run.from_trec(run_dir / "tiny-beir-test.run")
    assert all(sorted(d for d, _ in run[q]) == [f"d{i}" for i in range(1, 7)] for q in run.query_ids)
