"""Tokenising texts and (query, document) pairs into padded tensors, fast.

transformers' ``tokenizer(texts, padding=True, return_tensors="pt")`` spends most of its time (4x the Rust
tokenisation itself, measured on SciFact with 16 cores) turning Rust encodings into Python lists and those into
tensors. Here the Rust backend encodes, and numpy pads: the same ``input_ids`` and ``attention_mask`` (and, for
pairs, ``token_type_ids``). For one text ``token_type_ids`` are left out: they are all zeros, which is what models
assume without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
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


@dataclass(frozen=True)
class _PairTemplate:
    """How a post-processor joins two sequences: ``prefix A middle B suffix`` (BERT: ``[CLS] A [SEP] B [SEP]``),
    with the special tokens' ids and one type id for each of the five parts (BERT: 0 0 0 1 1)."""

    parts: tuple[np.ndarray, np.ndarray, np.ndarray]
    types: tuple[int, int, int, int, int]

    @property
    def added(self) -> int:
        return sum(len(part) for part in self.parts)


def _pair_template(backend: Any) -> _PairTemplate | None:
    """The template ``backend``'s post-processor follows, read off two probe pairs of different lengths; None
    where it does not follow one (then each pair goes through the post-processor itself)."""
    joiner = _pair_joiner(backend)
    found = []
    for probe in (["a b c", "d e"], ["x", "y z w v u"]):
        a, b = backend.encode_batch(probe, add_special_tokens=False)
        if not a.ids or not b.ids:
            return None
        joined = joiner.post_process(a, b)
        ids, types = np.asarray(joined.ids), np.asarray(joined.type_ids)
        second = np.flatnonzero(np.asarray([s == 1 for s in joined.sequence_ids]))  # the first's are not marked
        if len(second) != len(b.ids) or np.any(np.diff(second) != 1) or list(ids[second]) != b.ids:
            return None
        places = [i for i in range(second[0] - len(a.ids) + 1) if list(ids[i : i + len(a.ids)]) == a.ids]
        if len(places) != 1:
            return None
        first = np.arange(places[0], places[0] + len(a.ids))
        cuts = (slice(0, first[0]), first, slice(first[-1] + 1, second[0]), second, slice(second[-1] + 1, len(ids)))
        kinds = [set(types[c].tolist()) for c in cuts]
        if any(len(kind) > 1 for kind in kinds):  # a part of mixed type ids: not a template of this kind
            return None
        found.append(_PairTemplate((ids[cuts[0]], ids[cuts[2]], ids[cuts[4]]),
                                   tuple(kind.pop() if kind else 0 for kind in kinds)))  # type: ignore[arg-type]
    same_parts = all(np.array_equal(x, y) for x, y in zip(found[0].parts, found[1].parts))
    return found[0] if same_parts and found[0].types == found[1].types else None


def _join_pairs(
    template: _PairTemplate, queries: list[np.ndarray], docs: list[np.ndarray], max_length: int, cut_left: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Pairs joined by ``template``, each document cut (``only_second``) so its pair fits ``max_length``: ids and
    type ids end to end, each row's length and the offset of its document in the row. None where a query alone
    leaves the document no room (the post-processor then raises its own error)."""
    prefix, middle, suffix = template.parts
    pieces, lengths = [], []
    for query, doc in zip(queries, docs):
        room = max_length - template.added - len(query)
        if room < 0:
            return None
        if len(doc) > room:
            doc = doc[len(doc) - room :] if cut_left else doc[:room]
        pieces += [prefix, query, middle, doc, suffix]
        lengths.append((len(prefix), len(query), len(middle), len(doc), len(suffix)))
    parts = np.asarray(lengths, dtype=np.int64).reshape(-1, 5)
    type_ids = np.repeat(np.tile(np.asarray(template.types, dtype=np.int64), len(parts)), parts.ravel())
    starts = parts[:, :3].sum(1)
    rows = parts.sum(1)
    starts[parts[:, 3] == 0] = rows[parts[:, 3] == 0]  # as the post-processor reports it: no document token
    return np.concatenate(pieces).astype(np.int64), type_ids, rows, starts


def _pair_joiner(backend: Any, max_length: int | None = None, direction: str = "right") -> Any:
    """A model-less Rust tokenizer holding ``backend``'s post-processor (with ``max_length``, truncating pairs
    ``only_second``): it joins two encodings (special tokens, type ids) exactly as encoding the pair would, and is
    the caller's own."""
    joiner = Tokenizer(WordLevel({}, unk_token=None))
    joiner.post_processor = backend.post_processor
    if max_length is not None:
        joiner.enable_truncation(max_length, stride=0, strategy="only_second", direction=direction)
    return joiner


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
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    return _pad_flat(flat, lengths, pad_id, left)


def _pad_flat(
    flat: np.ndarray, lengths: np.ndarray, pad_id: int, left: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_pad` of rows given end to end in ``flat``: the mask's true cells, read row by row, are exactly
    the rows' cells in order on either padding side, so one masked assignment fills them all."""
    width = int(lengths.max()) if len(lengths) else 0
    offsets = width - lengths if left else np.zeros_like(lengths)
    positions = np.arange(width)
    mask = positions >= offsets[:, None] if left else positions < lengths[:, None]
    out = np.full((len(lengths), width), pad_id, dtype=flat.dtype)
    out[mask] = flat
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
    # The cache is read into this call's own dict (so clearing it never loses a text this call needs); pairs are
    # cut here, or by a post-processing tokenizer of this call's own, never by switching the shared backend.
    template = _pair_template(backend)
    texts: dict[str, Any] = {}  # text -> its ids (numpy) where a template joins pairs, else its Rust encoding
    new = []
    for text in dict.fromkeys(queries + docs):
        known = cache.get(text)
        if known is None:
            new.append(text)
        else:
            texts[text] = known
    if new:  # texts alone, no special tokens, cut at max_length tokens (none can keep more in a pair)
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        encodings = _encode(tokenizer, backend, new, max_length, lambda t: encode(t, add_special_tokens=False))
        fresh = dict(zip(new, (np.asarray(e.ids, dtype=np.int64) for e in encodings) if template else encodings))
        texts.update(fresh)
        cache.update(fresh)
    left = tokenizer.padding_side == "left"
    joined = template and _join_pairs(template, [texts[q] for q in queries], [texts[d] for d in docs], max_length,
                                      tokenizer.truncation_side == "left")
    if joined:
        flat_ids, flat_types, lengths, starts = joined
        ids, mask, offsets = _pad_flat(flat_ids, lengths, tokenizer.pad_token_id, left)
        type_ids = _pad_flat(flat_types, lengths, 0, left)[0]
    else:
        if template:  # a query too long for its pair: the post-processor raises its own error
            encodings = backend.encode_batch_fast(queries + docs, add_special_tokens=False)
            texts = dict(zip(queries + docs, encodings))
        joiner = _pair_joiner(backend, max_length, tokenizer.truncation_side)
        pairs = [joiner.post_process(texts[q], texts[d]) for q, d in zip(queries, docs)]
        ids, mask, offsets = _pad([e.ids for e in pairs], tokenizer.pad_token_id, left)
        type_ids = _pad([e.type_ids for e in pairs], 0, left)[0]
        starts = np.asarray([next((j for j, s in enumerate(e.sequence_ids) if s == 1), len(e.ids)) for e in pairs],
                            dtype=np.int64)
    out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in tokenizer.model_input_names:
        out["token_type_ids"] = torch.from_numpy(type_ids)
    if doc_starts:
        out["doc_start"] = torch.from_numpy(starts + offsets)
    return out


def insert_after_first(inputs: dict[str, Tensor], token_id: int) -> dict[str, Tensor]:
    """Every row with ``token_id`` put after its first token, as a real token of type 0: ColBERT's and Lightning
    IR's marker tokens, and the Set-Encoder's interaction token."""
    fill = {"input_ids": token_id, "attention_mask": 1, "token_type_ids": 0}
    return {k: torch.cat([v[:, :1], torch.full_like(v[:, :1], fill[k]), v[:, 1:]], 1) if k in fill else v
            for k, v in inputs.items()}

