"""A backbone that runs on ONNX Runtime: the exported graph of an HF backbone, standing in for the PyTorch one.

``boltir export onnx`` (:mod:`boltir.integrations.onnx`) writes a model's backbones as ONNX graphs beside its
tokenizer, boltir config and head weights; loading that directory with ``backend="onnx"`` puts an
:class:`OnnxBackbone` where the HF backbone was. Pooling, projections, SPLADE's activation and scoring heads stay
boltir's own layers, so a module keeps its whole API (score, encode, index, search, re-rank).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, require

ONNX_DIR = "onnx"
EXPORT_INFO = "export.json"
# "auto" (the modules' default): PyTorch weights, run on ONNX Runtime for inference on a CPU (see onnx_cache)
BACKENDS = ("auto", "torch", "onnx")


@dataclass
class OnnxOutput:
    """The outputs a family reads from its backbone, named as transformers names them."""

    last_hidden_state: Tensor | None = None
    pooler_output: Tensor | None = None
    logits: Tensor | None = None


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend='{backend}' does not exist; choose one of {list(BACKENDS)}.")


def is_onnx_export(directory: Path) -> bool:
    """Whether ``directory`` was written by ``boltir export onnx``."""
    return (Path(directory) / ONNX_DIR / EXPORT_INFO).is_file()


def read_export_info(directory: Path) -> dict[str, Any]:
    """What ``boltir export onnx`` recorded in ``DIR/onnx/export.json``; a clear error for any other directory."""
    path = Path(directory) / ONNX_DIR / EXPORT_INFO
    if not path.is_file():
        raise ConfigError(f"{directory} holds no ONNX export ({ONNX_DIR}/{EXPORT_INFO} is missing): run "
                          f"`boltir export onnx --model {directory} --out OUT` and load OUT with backend='onnx'.")
    return json.loads(path.read_text())


class OnnxBackbone(nn.Module):
    """Runs one exported backbone graph; ``forward(**tokens)`` returns what the HF backbone's forward would.

    It has no parameters: the weights live in the graph. ``config`` is the backbone's HF config (shapes, model
    type), read by the family's layers and by index fingerprints.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        super().__init__()
        ort = require("onnxruntime", "onnxruntime", "backend='onnx'", extra="onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1  # one graph at a time: every core goes to its operators (sequential mode)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.config = config
        self.name_or_path = str(path)

    def __deepcopy__(self, memo: dict) -> OnnxBackbone:
        return self  # a session holds no state between runs; an untied model's query graph replaces this share

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None, **kwargs: Any) -> OnnxOutput:
        if kwargs:
            raise ConfigError(f"the ONNX backend runs plain padded batches; it got {sorted(kwargs)} (attention layouts, "
                              "packed texts): use backend='torch' for this model.")
        given = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)}
        feeds = {name: given[name].detach().cpu().numpy().astype(np.int64, copy=False) for name in self.input_names}
        outputs = self.session.run(self.output_names, feeds)
        return OnnxOutput(**{name: torch.from_numpy(value) for name, value in zip(self.output_names, outputs)})


def onnx_backbones(directory: Path, config: Any, names: list[str]) -> dict[str, OnnxBackbone]:
    """The exported graphs ``names`` (``backbone``, ``query_backbone``) of ``directory``, each as a backbone."""
    info = read_export_info(directory)
    missing = [n for n in names if n not in info.get("graphs", {})]
    if missing:
        raise ConfigError(f"{directory / ONNX_DIR / EXPORT_INFO} lists no graph for {missing}: export the model again.")
    return {name: OnnxBackbone(directory / ONNX_DIR / info["graphs"][name], config) for name in names}


__all__ = ["BACKENDS", "ONNX_DIR", "OnnxBackbone", "OnnxOutput", "check_backend", "is_onnx_export", "onnx_backbones", "read_export_info"]
