"""Fast tokenisation gives exactly what transformers' own padded call gives, on either padding side."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir.models.layers import tokenize_texts
from boltir.models.layers.tokenize import tokenize_pairs
from boltir.models.model import load_tokenizer

WORDS = "the capital of germany is berlin moon causes ocean tide protein cell cancer risk brain mice , . ?".split()
texts_strategy = st.lists(st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join), min_size=1, max_size=6)


def _reference(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_matches_transformers(fixture, side, request):
    tokenizer = load_tokenizer(request.getfixturevalue(fixture))
    tokenizer.padding_side = side

    @settings(max_examples=25, deadline=None)
    @given(texts=texts_strategy, max_length=st.integers(4, 64))
    def check(texts, max_length):
        reference = _reference(tokenizer, texts, max_length)  # also leaves the backend's padding switched on
        fast = tokenize_texts(tokenizer, texts, max_length)
        assert torch.equal(fast["input_ids"], reference["input_ids"])
        assert torch.equal(fast["attention_mask"], reference["attention_mask"])

    check()


def test_no_texts_gives_empty_batch(tiny_bert_dir):
    fast = tokenize_texts(load_tokenizer(tiny_bert_dir), [], 16)
    assert fast["input_ids"].shape == (0, 0)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("joined_by", ["template", "post-processor"])
def test_pairs_match_transformers(fixture, side, joined_by, request, monkeypatch):
    """Pairs joined by the template read off the post-processor (numpy) and by the post-processor itself (the
    fallback) both equal transformers' own pairs."""
    from boltir.models.layers import tokenize as module

    tokenizer = load_tokenizer(request.getfixturevalue(fixture))
    tokenizer.padding_side = side
    template = module._pair_template(module._backend(tokenizer, 64, "longest_first"))
    assert template is not None  # BERT's [CLS] A [SEP] B [SEP] and Llama's <s> A <s> B both follow one
    if joined_by == "post-processor":
        monkeypatch.setattr(module, "_pair_template", lambda backend: None)
    short = st.lists(st.sampled_from(WORDS), max_size=5).map(" ".join)
    long = st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join)

    @settings(max_examples=25, deadline=None)
    @given(pairs=st.lists(st.tuples(short, long), min_size=1, max_size=6), max_length=st.integers(16, 64))
    def check(pairs, max_length):
        queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
        reference = tokenizer(queries, docs, padding=True, truncation="only_second", max_length=max_length,
                              return_tensors="pt")
        fast = tokenize_pairs(tokenizer, queries, docs, max_length, doc_starts=True)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if key in reference:
                assert torch.equal(fast[key], reference[key]), key
        starts = [next((j for j, s in enumerate(reference.sequence_ids(i)) if s == 1), None) for i in range(len(pairs))]
        for row, start in enumerate(starts):
            if start is not None:
                assert int(fast["doc_start"][row]) == start

    check()


def test_long_texts_are_cut_before_tokenising_without_changing_tokens(tiny_bert_dir):
    """Texts far longer than max_length are tokenised from a prefix; where the prefix holds too few tokens
    (long words), the whole text is tokenised again: the result is always transformers' own."""
    from boltir.models.layers import tokenize as module

    tokenizer = load_tokenizer(tiny_bert_dir)
    texts = [" ".join(WORDS * 20), " ".join(["ж" * 40] * 20), "y" * 300 + " berlin", "berlin"]
    for max_length in (8, 16):
        reference = _reference(tokenizer, texts, max_length)
        assert torch.equal(tokenize_texts(tokenizer, texts, max_length)["input_ids"], reference["input_ids"])
        seen: list = []
        backend = module._backend(tokenizer, max_length, "longest_first")

        class Spy:
            pre_tokenizer, normalizer, encode_batch = backend.pre_tokenizer, backend.normalizer, None

            def encode_batch_fast(self, inputs, seen=seen, backend=backend):
                seen.append(list(inputs))
                return backend.encode_batch_fast(inputs)

        encodings = module._encode(tokenizer, Spy(), texts, max_length)
        assert [e.ids for e in encodings] == [e.ids for e in backend.encode_batch_fast(texts)]
        assert len(seen[0][0]) <= module.CUT_CHARS_PER_TOKEN * max_length  # the first text was cut
        assert seen[1] == [texts[1]]  # unknown 40-character words: its prefix held too few tokens, tokenised whole
    pairs = tokenize_pairs(tokenizer, ["capital", "tide"], texts[:2], 16)
    reference = tokenizer(["capital", "tide"], texts[:2], padding=True, truncation="only_second", max_length=16,
                          return_tensors="pt")
    assert torch.equal(pairs["input_ids"], reference["input_ids"])


def test_pair_texts_are_tokenised_once_across_batches(tiny_bert_dir):
    tokenizer = load_tokenizer(tiny_bert_dir)
    queries, docs = ["capital", "capital", "tide"], ["berlin is the capital", "paris", "berlin is the capital"]
    cache: dict = {}
    first = tokenize_pairs(tokenizer, queries, docs, 16, cache=cache)
    assert sorted(cache) == sorted({*queries, *docs})
    again = tokenize_pairs(tokenizer, queries[::-1], docs[::-1], 16, cache=cache)
    assert len(cache) == 4
    reference = tokenizer(queries[::-1], docs[::-1], padding=True, truncation="only_second", max_length=16, return_tensors="pt")
    assert torch.equal(again["input_ids"], reference["input_ids"]) and torch.equal(again["token_type_ids"], reference["token_type_ids"])
    assert torch.equal(first["input_ids"], tokenize_pairs(tokenizer, queries, docs, 16)["input_ids"])
