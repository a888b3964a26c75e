"""A build killed after some shards resumes from them (encoding only the rest) and gives the from-scratch index."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch

from boltir import BiEncoderModule, DataModule, DocDataset, FaissIndexConfig, Trainer, open_searcher
from boltir.index.shards import complete_shards

WORDS = "berlin paris moon tide gene cell brain drug neural rank search ocean capital cancer mice model".split()


class Killed(RuntimeError):
    pass


class KillAfter(pl.Callback):
    """Stands in for a crash: raises after ``batches`` batches (the shards written so far stay)."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx + 1 >= self.batches:
            raise Killed("killed")


class CountDocs(pl.Callback):
    def __init__(self) -> None:
        self.docs = 0

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.docs += len(outputs.ids)


def _trainer(*callbacks: pl.Callback) -> Trainer:
    return Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                   callbacks=list(callbacks))


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with open(path, "w") as handle:
        for i in range(40):
            text = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 5))
            handle.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    return path


def test_killed_build_resumes_from_its_shards_and_equals_a_fresh_one(tiny_bert_dir, corpus, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    data = lambda: DataModule(DocDataset(corpus), inference_batch_size=4, sort_window=1)  # noqa: E731
    config = FaissIndexConfig()
    _trainer().index(module, data(), tmp_path / "fresh", config, shard_size=8)

    with pytest.raises(Killed):
        _trainer(KillAfter(batches=5)).index(module, data(), tmp_path / "index", config, shard_size=8)
    shard_dir = tmp_path / ".index.shards"
    kept = complete_shards(shard_dir)
    assert [s.count for s in kept] == [8, 8] and not (tmp_path / "index" / "CURRENT").exists()  # 2 shards done, the 3rd lost; no index yet

    counter = CountDocs()
    callback = _trainer(counter).index(module, data(), tmp_path / "index", config, shard_size=8, resume=True)
    assert callback.resumed_documents == 16 and counter.docs == 24  # only the documents the shards lack
    assert not shard_dir.exists()  # removed once the index is written

    fresh, resumed = open_searcher(tmp_path / "fresh"), open_searcher(tmp_path / "index")
    assert resumed.manifest["count"] == 40 and sorted(resumed.doc_ids.tolist()) == sorted(fresh.doc_ids.tolist())
    queries = module.encode_queries(["berlin capital", "moon tide ocean", "neural rank model"])
    fresh_scores, fresh_ids = fresh.search_arrays(queries, 10)
    scores, ids = resumed.search_arrays(queries, 10)
    assert ids == fresh_ids
    torch.testing.assert_close(torch.as_tensor(scores), torch.as_tensor(fresh_scores), atol=1e-5, rtol=1e-4)


def test_without_resume_old_shards_are_cleared(tiny_bert_dir, corpus, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    with pytest.raises(Killed):
        _trainer(KillAfter(batches=3)).index(module, DataModule(DocDataset(corpus), inference_batch_size=4), tmp_path / "index", shard_size=4)
    assert complete_shards(tmp_path / ".index.shards")
    counter = CountDocs()
    _trainer(counter).index(module, DataModule(DocDataset(corpus), inference_batch_size=4), tmp_path / "index", shard_size=4, keep_shards=True)
    assert counter.docs == 40 and sum(s.count for s in complete_shards(tmp_path / ".index.shards")) == 40
