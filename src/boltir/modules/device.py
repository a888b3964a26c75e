"""Putting batches on a device and keeping it busy: page-locked copies, input order, packing, the helper thread.

Free functions, not module methods: the bi-encoder and cross-encoder modules both call them, each with its own
device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor, nn

from ..data.batches import Encoding, pin_tensor
from ..models.layers.attention import varlen_runs

# Texts (or query-document pairs) per forward pass by default: a GPU stays busy with large batches; a CPU's small
# ones stay in its caches.
GPU_BATCH_SIZE = 256
CPU_BATCH_SIZE = 64


def default_batch_size(device: torch.device) -> int:
    """Texts or pairs per forward pass when ``encode_batch_size`` is not set: 256 on a GPU, 64 on a CPU."""
    return GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def to_device(encoding: Encoding, device: torch.device) -> Encoding:
    """Move a tokenised batch to ``device``; through page-locked memory on a GPU, so the copy does not wait for
    the GPU's queued work and the CPU can prepare the next batch meanwhile."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in encoding.items()}
    return {k: pin_tensor(v).to(device, non_blocking=True) for k, v in encoding.items()}


def in_input_order(values: Any, order: Sequence[int] | Tensor, device: torch.device) -> Any:
    """``values`` computed in ``order`` (row ``i`` for input ``order[i]``), put back in input order; on a GPU the
    permutation goes through page-locked memory, so its copy does not wait for the GPU's queued work."""
    inverse = torch.argsort(torch.as_tensor(order))
    if device.type == "cuda":
        inverse = inverse.pin_memory().to(device, non_blocking=True)
    return values[inverse]


def packs_sequences(model: nn.Module, device: torch.device, training: bool) -> bool:
    """Whether batches run packed, end to end without padding: where PyTorch's variable-length flash kernel runs
    them (a recent GPU, fp16/bf16 weights or autocast, torch 2.10+), in inference (the kernel has no attention
    dropout), for a model that can (``model.packable``)."""
    if training:
        return False
    autocast = device.type == "cuda" and torch.is_autocast_enabled("cuda")
    dtype = torch.get_autocast_dtype("cuda") if autocast else weights_dtype(model)
    return runs_packed(model, device, dtype)


def weights_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of ``model``'s weights; float32 for a model that holds none in PyTorch (an ONNX Runtime copy, a
    query side served from cached embeddings)."""
    return next((parameter.dtype for parameter in model.parameters()), torch.float32)


def runs_packed(model: nn.Module, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``model`` runs packed batches on ``device`` in ``dtype`` (see :func:`packs_sequences`)."""
    return bool(getattr(model, "packable", False)) and varlen_runs(device, dtype)


def overlapped(batches: Sequence[Any], prepare: Callable[[Any], Any], compute: Callable[[Any], Tensor], helper: bool) -> list[Tensor]:
    """``compute(prepare(batch))`` for every batch, in order. With ``helper``, one thread prepares (tokenises,
    page-locks) the next batch while this one is computed: Rust tokenizers release the GIL, so the host prepares
    while the GPU runs the queued kernels. Callers pass ``helper`` on a GPU only: on a CPU the matrix products
    already use every core, so preparing beside them would only compete.

    One thread, not several: tokenising switches the shared Rust tokenizer's truncation between calls
    (transformers does on each call), so two threads tokenising at once could cut each other's texts; on an H200,
    2 or 4 threads were no faster anyway (benchmarks/RESULTS.md, round 3).
    """
    if not helper or len(batches) < 2:
        return [compute(prepare(batch)) for batch in batches]
    chunks = []
    with ThreadPoolExecutor(max_workers=1) as thread:
        upcoming = thread.submit(prepare, batches[0])
        for index in range(len(batches)):
            prepared = upcoming.result()
            if index + 1 < len(batches):
                upcoming = thread.submit(prepare, batches[index + 1])
            chunks.append(compute(prepared))
    return chunks


__all__ = ["default_batch_size", "in_input_order", "overlapped", "packs_sequences", "to_device"]
