"""Indexing across processes (DDP, two CPU processes over gloo): each rank encodes its share, one index results."""

from __future__ import annotations

import pytest
import torch

from boltir import (
    BiEncoderConfig,
    BiEncoderModule,
    DataModule,
    DocDataset,
    FaissIndexConfig,
    QueryDataset,
    Trainer,
    open_searcher,
)


def _trainer(**kwargs) -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("segments", [None, {"aggregation": "sedr", "max_segments": 3}], ids=["plain", "segments"])
def test_two_processes_build_the_same_index_as_one(segments, tiny_bert_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(doc_length=6 if segments else 256, segments=segments))
    _trainer(devices=1).index(module, DataModule(DocDataset(tiny_beir), inference_batch_size=2), tmp_path / "one")
    data = DataModule(DocDataset(tiny_beir), inference_batch_size=2, num_workers=1)
    _trainer(devices=2, strategy="ddp_spawn").index(module, data, tmp_path / "two", FaissIndexConfig())
    assert not (tmp_path / ".two.shards").exists()
    one, two = open_searcher(tmp_path / "one"), open_searcher(tmp_path / "two")
    assert two.manifest["documents"] == 6 and two.manifest["count"] == one.manifest["count"]
    assert sorted(two.doc_ids) == sorted(one.doc_ids) and two.manifest.get("segments") == one.manifest.get("segments")
    queries = module.encode_queries([q.text for q in QueryDataset(tiny_beir)])
    (one_scores, one_ids), (two_scores, two_ids) = one.search_arrays(queries, 6), two.search_arrays(queries, 6)
    assert [r[0] for r in two_ids] == [r[0] for r in one_ids]
    torch.testing.assert_close(torch.as_tensor(two_scores), torch.as_tensor(one_scores), atol=1e-5, rtol=1e-4)
