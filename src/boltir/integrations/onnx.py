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

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from .._io import atomic_dir
from ..errors import ConfigError, require
from ..index.base import boltir_version
from ..models import MODEL_FAMILIES, BiEncoderModel, BoltirModel, CrossEncoderModel, SpladeModel, load_model
from ..models.model import HEADS_NAME, is_decoder
from ..models.onnx_backbone import EXPORT_INFO, ONNX_DIR, OnnxBackbone
from ..modules import BoltirModule

QUANTIZATIONS = ("int8",)
OPSET = 18

__all__ = ["QUANTIZATIONS", "export_onnx"]


class _BackboneGraph(nn.Module):
    """The backbone's forward with positional inputs and the named outputs the family reads, as a tuple."""

    def __init__(self, backbone: nn.Module, outputs: list[str]) -> None:
        super().__init__()
        self.backbone, self.outputs = backbone, outputs

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> tuple[Tensor, ...]:
        given = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        result = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **given)
        return tuple(getattr(result, name) for name in self.outputs)


def _graph_outputs(model: BoltirModel) -> list[str]:
    """The backbone outputs the family's layers read; other models are refused with what to use instead."""
    if isinstance(model.backbone, OnnxBackbone):
        raise ConfigError(f"{model.name_or_path} runs on ONNX already: export the PyTorch model directory it came from.")
    if isinstance(model, CrossEncoderModel):
        if model.config.attention != "full" or model.seq2seq or is_decoder(model.backbone.config):
            raise ConfigError(f"only pointwise cross-encoders with an encoder backbone and attention='full' export to "
                              f"ONNX (this one: attention='{model.config.attention}', {type(model.backbone).__name__}).")
        return ["pooler_output"] if model.pooling is None else ["last_hidden_state"]
    if isinstance(model, SpladeModel):
        return ["logits"]
    if type(model) is BiEncoderModel:
        if model.segments is not None or is_decoder(model.backbone.config):
            raise ConfigError("bi-encoders with multi-vector segments or decoder backbones do not export to ONNX yet; "
                              "export a plain dense bi-encoder (or run this one with backend='torch').")
        return ["last_hidden_state"]
    raise ConfigError(f"{type(model).__name__} does not export to ONNX: dense bi-encoders, SPLADE and cross-encoders do.")


def _example(model: BoltirModel) -> dict[str, Tensor]:
    """Two texts of different lengths, tokenised as the model tokenises (a batch of 1 would fix the batch axis)."""
    texts = ["what causes ocean tides and how high do they rise", "tides"]
    if isinstance(model, CrossEncoderModel):
        return model.tokenize_pairs(texts, texts[::-1]).inputs
    return model.tokenize_docs(texts)


def _export_graph(backbone: nn.Module, example: dict[str, Tensor], outputs: list[str], path: Path) -> None:
    require("onnxscript", "onnxscript", "ONNX export (torch.onnx's dynamo exporter)", extra="onnx")
    backbone = copy.deepcopy(backbone).float().eval()
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("sdpa")  # boltir's attention (packed layouts) is PyTorch-only
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own notices (opset conversions, deprecations)
        torch.onnx.export(_BackboneGraph(backbone, outputs), tuple(example[n] for n in inputs), str(path),
                          input_names=inputs, output_names=outputs, opset_version=OPSET, dynamo=True,
                          external_data=False, dynamic_shapes={n: {0: batch, 1: length} for n in inputs})


def _quantize(path: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the graph's weights (activations quantised at run time)."""
    quantization = require("onnxruntime.quantization", "onnxruntime", "int8 quantisation", extra="onnx")
    float_path = path.with_suffix(".fp32.onnx")
    os.replace(path, float_path)
    quantization.quantize_dynamic(str(float_path), str(path), weight_type=quantization.QuantType.QInt8)
    float_path.unlink()


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
    outputs = _graph_outputs(model)
    example = _example(model)
    graphs: dict[str, str] = {}
    with atomic_dir(out_dir) as tmp:
        (tmp / ONNX_DIR).mkdir()
        for name, backbone in model.backbones().items():
            graphs[name] = f"{name}.onnx"
            _export_graph(backbone, example, outputs, tmp / ONNX_DIR / graphs[name])
            if quantize == "int8":
                _quantize(tmp / ONNX_DIR / graphs[name])
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
