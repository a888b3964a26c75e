"""Run by tests/callbacks/test_index_ddp.py under torchrun (2 processes, gloo): Trainer.index under DDP.

Every collective that moves tensors between ranks is replaced by one that fails, so the run proves that no rank
gathers another's vectors (barriers and Lightning's broadcast of its log folder stay). Each rank writes how many
documents its shards took.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

from boltir import BiEncoderModule, DataModule, DocDataset, Trainer


def _refuse(*args, **kwargs):
    raise AssertionError("a rank gathered other ranks' data")


for name in ("all_gather", "all_gather_object", "all_gather_into_tensor", "gather", "gather_object"):
    setattr(dist, name, _refuse)

model_dir, corpus, out = sys.argv[1:4]
trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False,
                  enable_model_summary=False, enable_checkpointing=False)
callback = trainer.index(BiEncoderModule(model_dir), DataModule(DocDataset(corpus), inference_batch_size=4),
                         Path(out) / "index", shard_size=4, keep_shards=True)
assert callback.writer is not None
(Path(out) / f"rank{trainer.global_rank}.json").write_text(json.dumps({"written": callback.writer.written, "world": trainer.world_size}))
