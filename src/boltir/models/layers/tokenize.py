"""Tokenising texts and (query, document) pairs into padded tensors, fast.

transformers' ``tokenizer(texts, padding=True, return_tensors="pt")`` spends most of its time (4x the Rust
tokenisation itself, measured on SciFact with 16 cores) turning Rust encodings into Python lists and those into
tensors. Here the Rust backend encodes, and numpy pads: the same ``input_ids`` and ``attention_mask`` (and, for
pairs, ``token_type_ids``). For one text ``token_type_ids`` are left out: they are all zeros, which is what models
assume without them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def _backend(tokenizer: PreTrainedTokenizerBase, max_length: int, strategy: str) -> Any:
    """The Rust tokenizer set to truncate as asked and not to pad (None for pure-Python tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    if backend.padding is not None:  # transformers leaves padding switched on after a padded call
        backend.no_padding()
    truncation = {"max_length": max_length, "stride": 0, "strategy": strategy, "direction": tokenizer.truncation_side}
    if backend.truncation != truncation:
        backend.enable_truncation(**truncation)
    return backend


# Tokenising a whole long document only to keep its first max_length tokens wastes work (29% of SciFact's
# MiniLM tokens lie beyond 256): a text is first cut, at a space, after CUT_CHARS_PER_TOKEN characters per token
# of the limit. Pre-tokenizers that split words at spaces never join tokens across one, so a cut text that still
# fills max_length gives exactly the whole text's tokens; any other cut text is tokenised whole again.
CUT_CHARS_PER_TOKEN = 6
_SPACE_SPLITTING = ("BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Metaspace", "ByteLevel")
_CHAR_NORMALIZERS = ("NoneType", "BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents")


def _cut(text: str, limit: int) -> str:
    """``text`` up to the last space within its first ``limit`` characters (whole if shorter, or without a space)."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    return text[:space] if space > 0 else text


def _encode(tokenizer: PreTrainedTokenizerBase, backend: Any, inputs: list[str], max_length: int,
            encode: Callable[[list[str]], list] | None = None) -> list:
    """Rust encodings of texts truncated to ``max_length`` tokens, skipping the tokenisation of what truncation
    would drop where that is exact (see CUT_CHARS_PER_TOKEN)."""
    encode = encode or getattr(backend, "encode_batch_fast", backend.encode_batch)  # _fast: no character offsets
    exact = (type(backend.pre_tokenizer).__name__ in _SPACE_SPLITTING and type(backend.normalizer).__name__ in _CHAR_NORMALIZERS
             and tokenizer.truncation_side == "right")
    if not exact:
        return encode(inputs)
    limit = CUT_CHARS_PER_TOKEN * max_length
    cut = [_cut(t, limit) for t in inputs]
    encodings = encode(cut)
    again = [i for i, (e, c, x) in enumerate(zip(encodings, cut, inputs)) if len(e.ids) < max_length and c != x]
    for i, encoding in zip(again, encode([inputs[i] for i in again]) if again else []):
        encodings[i] = encoding
    return encodings


def _pad(rows: list[list[int]], pad_id: int, left: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows padded into one ``[n, longest]`` array, the attention mask, and each row's offset (left padding)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    offsets = width - lengths if left else np.zeros_like(lengths)
    for row, (values, offset) in enumerate(zip(rows, offsets)):
        out[row, offset : offset + len(values)] = values
    positions = np.arange(width)
    mask = positions >= offsets[:, None] if left else positions < lengths[:, None]
    return out, mask.astype(np.int64), offsets


def tokenize_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` of ``texts``, truncated to ``max_length`` and padded on the
    tokenizer's padding side, as ``tokenizer(texts, padding=True, truncation=True)`` would give them."""
    backend = _backend(tokenizer, max_length, "longest_first")
    if backend is None:  # a pure-Python tokenizer: nothing to bypass
        encoding = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    encodings = _encode(tokenizer, backend, texts, max_length)
    ids, mask, _ = _pad([e.ids for e in encodings], tokenizer.pad_token_id, tokenizer.padding_side == "left")
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def tokenize_pairs(
    tokenizer: PreTrainedTokenizerBase, queries: list[str], docs: list[str], max_length: int, doc_starts: bool = False,
    cache: dict[str, Any] | None = None,
) -> dict[str, Tensor]:
    """(query, document) pairs in one sequence each, the document cut to fit ``max_length``, as
    ``tokenizer(queries, docs, padding=True, truncation="only_second", max_length=max_length)`` gives them.

    Each distinct text is tokenised once (re-ranking repeats a query for each candidate, and a document for each
    query whose candidates it is among: SciFact's BM25 top-100 holds 5,083 distinct documents in 30,000 pairs);
    the tokenizer's own post-processor then joins and cuts each pair, as encoding the pair would. ``cache`` keeps
    the encodings of texts across calls (the batches of one re-ranking). ``doc_starts=True`` adds ``doc_start``:
    the position of each row's first document token (the row's length where the document is empty).
    """
    backend = _backend(tokenizer, max_length, "longest_first")
    if backend is None or backend.post_processor is None:  # no post-processor: pairs would not get their type ids
        encoding = tokenizer(queries, docs, padding=True, truncation="only_second", max_length=max_length,
                             return_tensors="pt")
        out = {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if doc_starts:
            lengths = out["attention_mask"].sum(1).tolist()
            out["doc_start"] = torch.tensor([next((j for j, s in enumerate(encoding.sequence_ids(i)) if s == 1), lengths[i])
                                             for i in range(len(queries))])
        return out
    cache = {} if cache is None else cache
    if len(cache) > 100_000:  # bounded: a long re-ranking keeps the recent texts only
        cache.clear()
    new = [t for t in dict.fromkeys(queries + docs) if t not in cache]
    if new:  # texts alone, no special tokens, cut at max_length tokens (none can keep more in a pair)
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        cache.update(zip(new, _encode(tokenizer, backend, new, max_length, lambda t: encode(t, add_special_tokens=False))))
    _backend(tokenizer, max_length, "only_second")
    encodings = [backend.post_process(cache[q], cache[d]) for q, d in zip(queries, docs)]
    left = tokenizer.padding_side == "left"
    ids, mask, offsets = _pad([e.ids for e in encodings], tokenizer.pad_token_id, left)
    out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in tokenizer.model_input_names:
        out["token_type_ids"] = torch.from_numpy(_pad([e.type_ids for e in encodings], 0, left)[0])
    if doc_starts:
        starts = [next((j for j, s in enumerate(e.sequence_ids) if s == 1), len(e.ids)) for e in encodings]
        out["doc_start"] = torch.from_numpy(np.asarray(starts, dtype=np.int64) + offsets)
    return out
