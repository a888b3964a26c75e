"""Training segmented bi-encoders: SeDR/MaxP through fit, and late-cache negatives in the in-batch loss."""

from __future__ import annotations

import json
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError, DataModule, TupleDataset
from boltir.data import collate
from boltir.models.layers.segments import SegmentedVectors

from .test_training import TOY, Recorder, fast, mean_loss, trainer


@pytest.fixture()
def long_tuples(tmp_path) -> TupleDataset:
    """The toy training set with every document three times as long: several 8-token segments each."""
    path = tmp_path / "long.jsonl"
    lines = [{"query": q, "pos": [" ".join([p] * 3)], "neg": [" ".join([n] * 3) for n in negatives]} for q, p, negatives in TOY]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return TupleDataset(path, list_size=4)


def segmented_module(directory, aggregation: str = "sedr", **options) -> BiEncoderModule:
    config = BiEncoderConfig(doc_length=8, segments={"aggregation": aggregation, "max_segments": 3})
    return BiEncoderModule(directory, config=config, loss_functions=None, **options)


@pytest.mark.parametrize("aggregation", ["maxp", "sedr", "transformer_head"])
def test_fit_lowers_the_loss_of_segmented_models_with_late_cache(aggregation, tiny_bert_dir, long_tuples):
    pl.seed_everything(0)
    module = fast(segmented_module(tiny_bert_dir, aggregation, in_batch_loss={"name": "infonce", "temperature": 0.1},
                                   late_cache_size=8))
    before = mean_loss(module, long_tuples)
    module.late_cache.clear()
    trainer(max_steps=12).fit(module, datamodule=DataModule(train_dataset=long_tuples, batch_size=2))
    assert len(module.late_cache) == 8  # it filled up during training
    module.late_cache.clear()
    assert mean_loss(module, long_tuples) < 0.8 * before


def test_late_cache_adds_earlier_documents_but_never_a_current_positive(tiny_bert_dir, long_tuples):
    module = segmented_module(tiny_bert_dir, in_batch_loss=Recorder(), late_cache_size=100)
    first, second = collate([long_tuples[0], long_tuples[1]]), collate([long_tuples[1], long_tuples[2]])
    module.training_losses(first)
    scores, targets = module.in_batch_loss.seen
    assert scores.shape == (2, 8)  # nothing cached yet
    module.training_losses(second)
    scores, targets = module.in_batch_loss.seen
    positives = {docs[0] for docs in second.docs}
    expected = [d for docs in first.docs for d in docs if d not in positives]
    assert len(expected) == 6  # the moon-and-tide text was cached twice: as a positive and as a negative
    assert module.model.tokenize_docs(expected)["segment_mask"].sum() > len(expected)  # several segments each
    assert scores.shape == targets.shape == (2, 8 + 6) and targets[:, 8:].sum() == 0
    with torch.no_grad():
        fresh = module.model.score(module.embed_queries(second.queries), module.embed_docs(expected))
    torch.testing.assert_close(scores[:, 8:], fresh, atol=1e-5, rtol=1e-4)


def test_late_cache_needs_in_batch_loss(tiny_bert_dir):
    with pytest.raises(ConfigError, match="in_batch_loss"):
        BiEncoderModule(tiny_bert_dir, late_cache_size=4)


def test_late_cache_is_filled_with_the_batch_of_every_device(tiny_bert_dir, long_tuples):
    """Under DDP each device enqueues the gathered batch, so every device holds the same cache."""
    module = segmented_module(tiny_bert_dir, in_batch_loss=Recorder(), late_cache_size=100)
    other = {}  # what the second device holds

    def fake_all_gather(tensor: Tensor) -> Tensor:
        if tensor.dtype.is_floating_point:
            other.setdefault(tensor.shape, torch.randn(tensor.shape))
        else:
            other.setdefault(tensor.shape, tensor + 1 if tensor.dtype == torch.long else tensor)
        return torch.stack([tensor, other[tensor.shape]])

    module._trainer = SimpleNamespace(world_size=2, global_rank=0, current_epoch=0)
    module.all_gather = fake_all_gather  # type: ignore[method-assign]
    try:
        batch = collate([long_tuples[0], long_tuples[1]])
        module.training_losses(batch)
        scores, _ = module.in_batch_loss.seen
    finally:
        module._trainer = None
    assert scores.shape == (4, 16)  # 2 devices x 2 queries, 2 x 8 documents, nothing cached before this step
    assert len(module.late_cache) == 16 and isinstance(module.late_cache.vectors, SegmentedVectors)
    assert not module.late_cache.vectors.vectors.requires_grad


class _SaveCacheKeys(pl.Callback):
    """Writes each rank's late-cache keys after training (the module lives in the spawned processes)."""

    def __init__(self, directory) -> None:
        self.directory = directory

    def on_train_end(self, trainer, pl_module) -> None:
        keys = pl_module.late_cache.keys.tolist()
        (self.directory / f"rank{trainer.global_rank}.json").write_text(json.dumps(keys))


@pytest.mark.slow
def test_late_cache_is_the_same_on_every_process_under_ddp(tiny_bert_dir, long_tuples, tmp_path):
    module = segmented_module(tiny_bert_dir, in_batch_loss={"name": "infonce", "temperature": 0.1}, late_cache_size=64)
    # find_unused_parameters: the tiny backbone has a pooler that bi-encoders never use
    strategy = "ddp_spawn_find_unused_parameters_true"
    fit = trainer(accelerator="cpu", devices=2, strategy=strategy, max_steps=2, callbacks=[_SaveCacheKeys(tmp_path)])
    fit.fit(module, datamodule=DataModule(train_dataset=long_tuples, batch_size=1))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # each rank enqueued the gathered batch of both
    assert len(ranks[0]) == 2 * 2 * 4  # 2 steps x 2 ranks x 1 query's list of 4 documents
