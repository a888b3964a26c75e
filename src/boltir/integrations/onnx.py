"""Export a boltir model's backbones to ONNX (dynamic batch and length axes), optionally int8-quantised.

The export directory holds the graphs (``onnx/*.onnx`` and ``onnx/export.json``), the tokenizer, the backbone's
HF ``config.json``, ``boltir_config.json`` and the head weights: everything a module needs to run from it with
``backend="onnx"`` and no PyTorch weights. Pooling, projection, SPLADE's activation and scoring heads stay
boltir's layers (as sentence-transformers' ONNX backend keeps pooling outside the graph), so encode, score,
index, search and re-rank give the PyTorch results (fp32: to 1e-4).

Dense bi-encoders (tied or not), SPLADE and pointwise cross-encoders with full attention export; long-document
segments, attention layouts (sparse, Set-Encoder), monoT5 and decoder LLMs need PyTorch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .._io import atomic_dir
from ..errors import ConfigError
from ..index.base import boltir_version
from ..models import MODEL_FAMILIES, BoltirModel, load_model
from ..models.model import HEADS_NAME
from ..models.onnx_backbone import EXPORT_INFO, ONNX_DIR
from ..models.onnx_export import OPSET, export_backbone, graph_outputs, quantize_int8
from ..modules import BoltirModule

QUANTIZATIONS = ("int8",)

__all__ = ["QUANTIZATIONS", "export_onnx"]


def export_onnx(model: BoltirModel | BoltirModule | str | os.PathLike[str], out_dir: str | os.PathLike[str],
                quantize: str | None = None, family: str | None = None) -> Path:
    """Export ``model`` (a model, a module, or a model directory / hub name) into ``out_dir`` for ``backend="onnx"``.

    ``quantize="int8"`` applies ONNX Runtime's dynamic int8 quantisation; ``family`` names the family of a plain
    HF directory (``bi-encoder``, ``splade``, ``cross-encoder``); saved boltir models know their own.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize='{quantize}' does not exist; choose one of {list(QUANTIZATIONS)} or none.")
    if isinstance(model, BoltirModule):
        model = model.model
    elif not isinstance(model, BoltirModel):
        if family is not None and family not in MODEL_FAMILIES:
            raise ConfigError(f"family '{family}' does not exist; choose one of {sorted(MODEL_FAMILIES)}.")
        model = load_model(model, default=MODEL_FAMILIES[family] if family else None)
    outputs = graph_outputs(model)
    graphs: dict[str, str] = {}
    with atomic_dir(out_dir) as tmp:
        (tmp / ONNX_DIR).mkdir()
        for name in model.backbones():
            graphs[name] = f"{name}.onnx"
            export_backbone(model, name, tmp / ONNX_DIR / graphs[name])
            if quantize == "int8":
                quantize_int8(tmp / ONNX_DIR / graphs[name])
        model.tokenizer.save_pretrained(tmp)
        model.backbone.config.save_pretrained(tmp)
        model.config.save(tmp)
        heads = model.head_state_dict()
        if heads:
            save_file({k: v.float() for k, v in heads.items()}, str(tmp / HEADS_NAME))
        info: dict[str, Any] = {"graphs": graphs, "outputs": outputs, "quantization": quantize, "opset": OPSET,
                                "source": model.name_or_path, "family": model.config.family,
                                "torch": torch.__version__, "boltir": boltir_version()}
        (tmp / ONNX_DIR / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return Path(out_dir)
