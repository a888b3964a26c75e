"""The late-cache negative queue: FIFO size, never a current positive, cleared on new epochs and devices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import ConfigError
from boltir.models.layers.segments import SegmentedVectors
from boltir.modules.late_cache import LateCache, stable_keys


def doc_vectors(numbers: list[int], segmented: bool) -> torch.Tensor | SegmentedVectors:
    """Vectors whose first value is the document's number, so the cache's output can be traced back."""
    flat = torch.tensor(numbers, dtype=torch.float32).unsqueeze(1).repeat(1, 4)
    if not segmented:
        return flat
    mask = torch.ones(len(numbers), 2, dtype=torch.bool)
    return SegmentedVectors(torch.stack([flat, flat], 1), mask)


def numbers_of(vectors) -> list[int]:
    values = vectors.vectors[:, 0, 0] if isinstance(vectors, SegmentedVectors) else vectors[:, 0]
    return [int(v) for v in values.tolist()]


batches = st.lists(
    st.tuples(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.lists(st.integers(0, 30), max_size=6)),
    min_size=1,
    max_size=12,
)


@given(batches, st.integers(1, 20), st.booleans())
@settings(max_examples=60, deadline=None)
def test_cache_never_returns_a_current_positive_and_keeps_the_newest(steps, size, segmented):
    cache = LateCache(size)
    history: list[int] = []
    for positives, negatives in steps:
        exclude = stable_keys([f"doc-{n}" for n in positives])
        offered = cache.negatives(exclude)
        expected = [n for n in history[-size:] if n not in positives]
        assert (numbers_of(offered) if offered is not None else []) == expected
        batch = positives + negatives
        cache.enqueue(stable_keys([f"doc-{n}" for n in batch]), doc_vectors(batch, segmented))
        history += batch
        assert len(cache) == min(size, len(history))


def test_cache_is_cleared_on_a_new_epoch_and_a_new_device():
    cache = LateCache(8)
    cache.sync(epoch=0, device=torch.device("cpu"))
    cache.enqueue(stable_keys(["a", "b"]), doc_vectors([1, 2], segmented=False))
    cache.sync(epoch=0, device=torch.device("cpu"))
    assert len(cache) == 2
    cache.sync(epoch=1, device=torch.device("cpu"))
    assert len(cache) == 0 and cache.negatives(stable_keys(["a"])) is None
    cache.enqueue(stable_keys(["a"]), doc_vectors([1], segmented=False))
    cache.sync(epoch=1, device=torch.device("meta"))
    assert len(cache) == 0


def test_cache_holds_no_gradients_and_checks_its_size():
    vectors = torch.randn(3, 4, requires_grad=True)
    cache = LateCache(4)
    cache.enqueue(stable_keys(["a", "b", "c"]), vectors * 2)
    assert not cache.negatives(stable_keys([])).requires_grad
    with pytest.raises(ConfigError, match="late_cache_size"):
        LateCache(-1)
    off = LateCache(0)
    off.enqueue(stable_keys(["a"]), vectors[:1])
    assert len(off) == 0


def test_stable_keys_do_not_depend_on_the_process():
    # fixed values: Python's own hash() would change with PYTHONHASHSEED, and DDP ranks must agree on keys
    assert stable_keys(["doc-1", "d2"]).tolist() == [4752762565065110614, 4700741041894862004]
