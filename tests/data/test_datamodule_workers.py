"""The host pipeline's defaults: workers and pinned memory follow the device unless set."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from boltir import DataModule
from boltir.data.datamodule import available_cores


def _on(device: str, world_size: int = 1, num_nodes: int = 1) -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), world_size=world_size, num_nodes=num_nodes)


def test_defaults_follow_the_device():
    data = DataModule()
    assert data._workers() == 0 and not data._pin_memory()  # no trainer: CPU
    data.trainer = _on("cpu")
    assert data._workers() == 0 and not data._pin_memory()  # the model needs the cores
    data.trainer = _on("cuda", world_size=4, num_nodes=2)
    assert data._pin_memory() and data._workers() == max(0, min(16, available_cores() // 2 - 1))  # 2 GPUs per node


def test_set_options_win():
    data = DataModule(num_workers=3, pin_memory=False, prefetch_factor=2)
    data.trainer = _on("cuda")
    assert data._worker_options()["num_workers"] == 3 and data._worker_options()["prefetch_factor"] == 2
    assert not data._pin_memory() and "prefetch_factor" not in DataModule(num_workers=0)._worker_options()
