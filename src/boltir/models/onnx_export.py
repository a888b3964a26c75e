"""Turning a model's backbones into ONNX graphs that ONNX Runtime runs fast on a CPU.

The graph comes from torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) over the
backbone's eager attention: that is the graph ONNX Runtime's transformer fusions recognise (fused Attention,
EmbedLayerNormalization, SkipLayerNormalization, BiasGelu), while the dynamo exporter's graph keeps attention as
loose MatMul/Softmax nodes (on SciFact with all-MiniLM-L6-v2 and 2 cores: 2.2x against 1.5x sentence-transformers'
PyTorch speed). ``onnxruntime.transformers.optimizer`` then writes those fusions into the saved graph, kept only
where the fused graph gives the unfused one's outputs. Every graph is checked against the PyTorch backbone on
texts of other lengths and batch sizes than the traced ones before it is used.

Both ``boltir export onnx`` (:mod:`boltir.integrations.onnx`) and the CPU default (:mod:`boltir.models.onnx_cache`)
export through here.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, require
from .bi_encoder.model import BiEncoderModel
from .cross_encoder.model import CrossEncoderModel
from .model import BoltirModel, is_decoder
from .onnx_backbone import OnnxBackbone
from .splade.model import SpladeModel

log = logging.getLogger(__name__)

OPSET = 17
# the model types whose attention ONNX Runtime's BERT optimizer fuses (encoder-only, absolute positions)
FUSED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert", "distilbert")
# how far an exported graph's outputs may be from the PyTorch backbone's (fp32: float rounding of fused kernels)
TOLERANCE = 1e-4
TRACE_TEXTS = ["what causes ocean tides and how high do they rise", "tides"]
CHECK_TEXTS = ["tide", "the moon pulls on the oceans", "neural ranking models learn to rank documents for a query, "
               "and search engines use them to order what they show"]


class BackboneGraph(nn.Module):
    """The backbone's forward with positional inputs and the named outputs the family reads, as a tuple."""

    def __init__(self, backbone: nn.Module, outputs: list[str]) -> None:
        super().__init__()
        self.backbone, self.outputs = backbone, outputs

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> tuple[Tensor, ...]:
        given = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        result = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **given)
        return tuple(getattr(result, name) for name in self.outputs)


def graph_outputs(model: BoltirModel) -> list[str]:
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


def example_inputs(model: BoltirModel, texts: list[str]) -> dict[str, Tensor]:
    """``texts`` tokenised as the model tokenises them (documents, or pairs of them for a cross-encoder)."""
    if isinstance(model, CrossEncoderModel):
        return model.tokenize_pairs(texts, texts[::-1]).inputs
    return model.tokenize_docs(texts)


def export_backbone(model: BoltirModel, name: str, path: Path) -> None:
    """Write backbone ``name`` of ``model`` as an fp32 ONNX graph at ``path`` (dynamic batch and length axes),
    with ONNX Runtime's transformer fusions; raises :class:`ConfigError` if its outputs are not PyTorch's."""
    outputs = graph_outputs(model)
    backbone = copy.deepcopy(model.backbones()[name]).float()
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")  # the attention pattern ORT's fusions match (boltir's is PyTorch-only)
    # eval as a whole: the exporter restores the wrapper's mode afterwards, recursively (train mode = dropout)
    graph = BackboneGraph(backbone, outputs).eval()
    example = example_inputs(model, TRACE_TEXTS)
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    axes = {n: {0: "batch", 1: "length"} for n in inputs} | {n: {0: "batch"} for n in outputs}
    for n in outputs:
        if n != "pooler_output":
            axes[n][1] = "length"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices of the exporter
        torch.onnx.export(graph, tuple(example[n] for n in inputs), str(path),
                          input_names=inputs, output_names=outputs, opset_version=OPSET, dynamo=False,
                          dynamic_axes=axes, do_constant_folding=True)
    check = example_inputs(model, CHECK_TEXTS)
    with torch.no_grad():
        expected = [t.float().numpy() for t in graph(*(check[n] for n in inputs))]
    _fuse(path, backbone.config, {n: check[n] for n in inputs}, expected)
    error = _max_error(path, {n: check[n] for n in inputs}, expected)
    if error > TOLERANCE:
        raise ConfigError(f"the ONNX graph of {model.name_or_path} differs from PyTorch by {error:.2g}: run it with "
                          "backend='torch'.")


def _run(path: Path, feeds: dict[str, Tensor]) -> list[np.ndarray]:
    ort = require("onnxruntime", "onnxruntime", "ONNX export", extra="onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {n: v.numpy().astype(np.int64) for n, v in feeds.items() if n in names})


def _max_error(path: Path, feeds: dict[str, Tensor], expected: list[np.ndarray]) -> float:
    got = _run(path, feeds)
    return max(float(np.abs(g - e).max() / max(1.0, float(np.abs(e).max()))) for g, e in zip(got, expected))


def _fuse(path: Path, config: object, feeds: dict[str, Tensor], expected: list[np.ndarray]) -> None:
    """Replace the graph at ``path`` by ONNX Runtime's fused one where its model type has fusions and the fused
    graph's outputs are PyTorch's; otherwise leave it (ORT still applies its generic optimisations when loading)."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FUSED_MODEL_TYPES:
        return
    optimizer = require("onnxruntime.transformers.optimizer", "onnxruntime", "ONNX export", extra="onnx")
    fused = path.with_suffix(".fused.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                             hidden_size=config.hidden_size, opt_level=0)
        graph.save_model_to_file(str(fused))
        error = _max_error(fused, feeds, expected)
    except Exception as exc:  # noqa: BLE001 - an optimizer that cannot handle a graph leaves it as exported
        log.debug("ONNX Runtime's transformer optimizer left %s unfused: %s", path, exc)
        fused.unlink(missing_ok=True)
        return
    if error > TOLERANCE:
        log.debug("the fused graph of %s differs by %.2g: kept the unfused one", path, error)
        fused.unlink()
        return
    os.replace(fused, path)


def quantize_int8(path: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the graph's weights (activations quantised at run time)."""
    quantization = require("onnxruntime.quantization", "onnxruntime", "int8 quantisation", extra="onnx")
    float_path = path.with_suffix(".fp32.onnx")
    os.replace(path, float_path)
    # the fused graph's contrib ops (Attention, SkipLayerNormalization) have no shape inference: say their type
    quantization.quantize_dynamic(str(float_path), str(path), weight_type=quantization.QuantType.QInt8,
                                  extra_options={"DefaultTensorType": 1})  # onnx.TensorProto.FLOAT
    float_path.unlink()


__all__ = ["OPSET", "export_backbone", "graph_outputs", "quantize_int8"]
