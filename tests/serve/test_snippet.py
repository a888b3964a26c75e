"""Snippets: the bounded finds in the lower-cased text pick the same first query word as a search for each word."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from boltir.serve.service import first_word, query_words, snippet

WORDS = ["ocean", "tide", "moon", "Vitamin", "bone", "density", "the", "cells", "cancer", "risk", "a", "of", "tides", "oceanic", "mo"]


def reference_snippet(text: str, query: str, length: int) -> str:
    """The earlier implementation: lower-case the text, find each query word, start near the first found."""
    if len(text) <= length:
        return text
    lowered = text.lower()
    found = [lowered.find(word) for word in re.findall(r"\w{3,}", query.lower())]
    first = min((p for p in found if p >= 0), default=0)
    start = max(0, min(first - length // 5, len(text) - length))
    if start:
        start = text.find(" ", start) + 1 or start
    cut = text[start : start + length]
    return ("…" if start else "") + cut + ("…" if start + length < len(text) else "")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=80), st.lists(st.sampled_from(WORDS), max_size=6),
       st.integers(10, 120), st.booleans(), st.sampled_from([" ", "", "-"]))
def test_snippet_matches_the_reference(text_words, query_words_list, length, upper, separator):
    text = separator.join(w.upper() if upper and i % 3 == 0 else w for i, w in enumerate(text_words))
    query = " ".join(query_words_list)
    expected = reference_snippet(text, query, length)
    assert snippet(text, query, length) == expected
    assert snippet(text, query, length, query_words(query)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=80), st.lists(st.sampled_from(WORDS), max_size=6),
       st.integers(1, 60), st.booleans(), st.sampled_from([" ", "", "-"]))
def test_first_word_by_chunks_is_the_first_found_in_the_whole_text(text_words, query_words_list, chunk, upper, separator):
    """Words across a chunk's start, chunks shorter than a word, and words only past the first chunk."""
    text = separator.join(w.upper() if upper and i % 3 == 0 else w for i, w in enumerate(text_words))
    words = query_words(" ".join(query_words_list))
    found = [p for p in (text.lower().find(word) for word in words) if p >= 0]
    assert first_word(text, words, chunk) == min(found, default=0)


def test_query_without_words_starts_at_the_beginning():
    assert query_words("a ? !") == ()
    assert snippet("x" * 50 + " ocean", "a ?", 20) == "x" * 20 + "…"
