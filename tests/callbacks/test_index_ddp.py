"""Two processes under DDP (gloo, CPU, launched by torchrun as on a GPU machine) index what one process does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from boltir import BiEncoderModule, DataModule, DocDataset, Trainer, open_searcher
from boltir.index.shards import complete_shards

from .test_index_resume import corpus  # noqa: F401  (the 40-document corpus fixture)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_ddp_processes_build_the_single_process_index_without_gathering(tiny_bert_dir, corpus, tmp_path):  # noqa: F811
    script = Path(__file__).with_name("ddp_index_main.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(script), str(tiny_bert_dir), str(corpus), str(tmp_path / "ddp")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]

    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and [r["written"] for r in ranks] == [20, 20]  # each its own half
    shards = complete_shards(tmp_path / "ddp" / ".index.shards")
    assert {s.rank for s in shards} == {0, 1} and sum(s.count for s in shards) == 40

    module = BiEncoderModule(tiny_bert_dir)
    single = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    single.index(module, DataModule(DocDataset(corpus), inference_batch_size=4), tmp_path / "single", shard_size=4)
    ddp, one = open_searcher(tmp_path / "ddp" / "index"), open_searcher(tmp_path / "single")
    assert ddp.manifest["count"] == 40 and sorted(ddp.doc_ids.tolist()) == sorted(one.doc_ids.tolist())
    queries = module.encode_queries(["berlin capital", "moon tide ocean", "neural rank model", "gene cell cancer"])
    ddp_scores, ddp_ids = ddp.search_arrays(queries, 10)
    one_scores, one_ids = one.search_arrays(queries, 10)
    assert ddp_ids == one_ids
    torch.testing.assert_close(torch.as_tensor(ddp_scores), torch.as_tensor(one_scores), atol=1e-5, rtol=1e-4)
