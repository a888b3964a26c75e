"""Tokenising single texts into padded tensors, fast.

transformers' ``tokenizer(texts, padding=True, return_tensors="pt")`` spends most of its time (4x the Rust
tokenisation itself, measured on SciFact with 16 cores) turning Rust encodings into Python lists and those into
tensors. Here the Rust backend encodes, and numpy pads: the same ``input_ids`` and ``attention_mask``.
``token_type_ids`` are left out: for one text they are all zeros, which is what models assume without them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase


def pad_right_for_causal_attention(tokenizer: PreTrainedTokenizerBase) -> None:
    """Pad decoder inputs on the right; ``Pooling("last")`` finds the last real token on either side.

    With left padding under a causal mask the leading pad positions have nothing to attend to, and what attention
    kernels return for such rows (zeros, NaN, or NaN gradients) differs between backends and versions. Right padding
    leaves every position at least the first token. (A LightRetriever symmetric run on an H200 scored 0.0 with left
    padding; see benchmarks/RESULTS.md.)
    """
    tokenizer.padding_side = "right"


def tokenize_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` of ``texts``, truncated to ``max_length`` and padded on the
    tokenizer's padding side, as ``tokenizer(texts, padding=True, truncation=True)`` would give them."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a pure-Python tokenizer: nothing to bypass
        encoding = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    if backend.padding is not None:  # transformers leaves padding switched on after a padded call
        backend.no_padding()
    truncation = {"max_length": max_length, "stride": 0, "strategy": "longest_first", "direction": tokenizer.truncation_side}
    if backend.truncation != truncation:
        backend.enable_truncation(**truncation)
    encodings = getattr(backend, "encode_batch_fast", backend.encode_batch)(texts)  # _fast: no character offsets
    lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    width = int(lengths.max()) if len(encodings) else 0
    ids = np.full((len(encodings), width), tokenizer.pad_token_id, dtype=np.int64)
    positions = np.arange(width)
    if tokenizer.padding_side == "left":
        for row, (encoding, length) in enumerate(zip(encodings, lengths)):
            ids[row, width - length :] = encoding.ids
        mask = positions >= (width - lengths)[:, None]
    else:
        for row, (encoding, length) in enumerate(zip(encodings, lengths)):
            ids[row, :length] = encoding.ids
        mask = positions < lengths[:, None]
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
