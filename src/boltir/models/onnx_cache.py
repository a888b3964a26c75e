"""The CPU default: a model's backbones exported once to ONNX, kept in boltir's cache, run on ONNX Runtime.

A module with ``backend="auto"`` (the default) runs inference on a CPU through :func:`onnx_runtime_model`: the
model with :class:`~boltir.models.onnx_backbone.OnnxBackbone` graphs in place of its backbones, sharing every
other layer (pooling, projections, heads). The graphs live in ``<boltir cache>/onnx/<key>/``, ``key`` being the
SHA-256 of what they are made from: the backbones' weights and HF configs as loaded (so a changed model
directory, a config override that changes outputs, or weights fine-tuned in this process get their own export),
the outputs the family reads, and the torch / ONNX Runtime versions. The export is written atomically, so two
processes racing to make it both end with a complete one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from .._io import atomic_dir
from ..errors import ConfigError, require
from .convert import cache_dir
from .model import BoltirModel
from .onnx_backbone import EXPORT_INFO, OnnxBackbone
from .onnx_export import OPSET, export_backbone, graph_outputs

# bumped when the export itself changes (exporter, fusions), so old cached graphs are not reused
EXPORT_FORMAT = 1


def export_key(model: BoltirModel) -> str:
    """SHA-256 of the backbones' weights and configs, the graph outputs and the exporting versions."""
    ort = require("onnxruntime", "onnxruntime", "the ONNX Runtime CPU default", extra="onnx")
    outputs = graph_outputs(model)
    digest = hashlib.sha256(json.dumps({"format": EXPORT_FORMAT, "opset": OPSET, "family": type(model).__name__,
                                        "outputs": outputs, "torch": torch.__version__,
                                        "onnxruntime": ort.__version__}).encode())
    for name, backbone in sorted(model.backbones().items()):
        digest.update(name.encode())
        # the config's shapes and options; not where it was loaded from, nor the attention it runs in PyTorch
        options = {k: v for k, v in backbone.config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
        digest.update(json.dumps(options, sort_keys=True, default=str).encode())
        for key, tensor in backbone.state_dict().items():
            if key.startswith("pooler.") and "pooler_output" not in outputs:
                continue  # not in the graph; HF draws it afresh at each load where the directory has none
            digest.update(f"{key} {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def onnx_runtime_model(model: BoltirModel, cache: Path | None = None) -> BoltirModel:
    """``model`` with its backbones on ONNX Runtime, exported into the cache the first time (with a one-line
    notice on stderr); raises :class:`ConfigError` / :class:`MissingDependencyError` where it cannot run there."""
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ConfigError("the ONNX Runtime default runs float32 weights; this model holds others.")
    key = export_key(model)
    directory = (cache or cache_dir()) / "onnx" / key[:32]
    if not (directory / EXPORT_INFO).is_file():
        with atomic_dir(directory) as tmp:
            for name in model.backbones():
                export_backbone(model, name, tmp / f"{name}.onnx")
            info = {"graphs": {name: f"{name}.onnx" for name in model.backbones()}, "key": key,
                    "source": model.name_or_path, "family": model.config.family}
            (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
        print(f"boltir: {model.name_or_path or type(model).__name__} runs on ONNX Runtime on this CPU (exported once "
              f"to {directory}); backend='torch' keeps PyTorch.", file=sys.stderr, flush=True)
    graphs = {name: OnnxBackbone(directory / f"{name}.onnx", backbone.config)
              for name, backbone in model.backbones().items()}
    return model.with_backbones(graphs)


__all__ = ["EXPORT_FORMAT", "export_key", "onnx_runtime_model"]
