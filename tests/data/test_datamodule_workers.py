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


def test_worker_init_freezes_what_the_worker_inherited():
    """A garbage collection in a worker must not traverse (and so copy) the main process's objects."""
    import gc
    import multiprocessing

    from boltir.data.datamodule import init_worker

    def child(queue):
        gc.unfreeze()  # whatever this test process froze before (the serve tests do): count the worker's own freeze
        init_worker(0)
        queue.put(gc.get_freeze_count())

    queue = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
    process.start()
    frozen = queue.get(timeout=30)
    process.join()
    assert frozen > 1000  # the worker froze the objects it inherited
