"""Shards on disk: what goes in comes back in the same form and order; only complete shards count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir.data import DocIdSet
from boltir.index.shards import ShardWriter, complete_shards, shard_doc_ids
from boltir.types import SegmentedVectors, TokenVectors


def _read_all(directory):
    ids, parts = [], []
    for shard in complete_shards(directory):
        for batch_ids, embeddings in shard.batches(rows=3):
            ids.extend(batch_ids)
            parts.append(embeddings)
    return ids, parts


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=8), shard_size=st.integers(1, 20))
def test_dense_vectors_come_back_in_order_whatever_the_shard_size(tmp_path_factory, sizes, shard_size):
    directory = tmp_path_factory.mktemp("shards")
    writer = ShardWriter(directory, rank=0, shard_size=shard_size)
    vectors = torch.randn(sum(sizes), 4)
    start = 0
    for size in sizes:
        writer.add([f"d{i}" for i in range(start, start + size)], vectors[start : start + size])
        start += size
    writer.close()
    ids, parts = _read_all(directory)
    assert ids == [f"d{i}" for i in range(len(vectors))]
    torch.testing.assert_close(torch.cat(parts), vectors)
    assert all(shard.count >= shard_size for shard in complete_shards(directory)[:-1])  # only the last is short


def test_sparse_token_segment_and_text_shards_round_trip(tmp_path):
    weights = torch.relu(torch.randn(5, 11))
    tokens = TokenVectors(torch.randn(5, 3, 4), torch.tensor([[1, 1, 0]] * 5, dtype=torch.bool))
    segments = SegmentedVectors(torch.randn(5, 2, 4), torch.tensor([[1, 0]] * 5, dtype=torch.bool))
    for name, representation, batch in [
        ("sparse", "sparse", weights), ("tokens", "multi-vector", tokens), ("segments", "dense", segments), ("texts", "lexical", list("abcde"))
    ]:
        writer = ShardWriter(tmp_path / name, shard_size=100, representation=representation)
        writer.add([f"d{i}" for i in range(5)], batch)
        writer.close()
        [shard] = complete_shards(tmp_path / name)
        assert shard.kind == name
        ids, parts = _read_all(tmp_path / name)
        assert ids == [f"d{i}" for i in range(5)]
        if name == "texts":
            assert parts == [list("abcde")]
        elif name == "sparse":
            torch.testing.assert_close(torch.cat(parts), weights)
        else:
            [back] = parts
            assert type(back) is type(batch)
            torch.testing.assert_close(back.vectors, batch.vectors)
            assert torch.equal(back.mask, batch.mask)


def test_partial_shards_are_ignored_and_a_new_writer_goes_on_after_complete_ones(tmp_path):
    writer = ShardWriter(tmp_path, rank=2, shard_size=2)
    writer.add(["a", "b"], torch.randn(2, 4))  # one complete shard
    writer.add(["c"], torch.randn(1, 4))  # still buffered
    writer.wait()
    (tmp_path / "rank00002-000007.tmp").mkdir()  # what a killed run leaves behind
    writer.abort()
    assert not list(tmp_path.glob("*.tmp"))
    assert [s.path.name for s in complete_shards(tmp_path)] == ["rank00002-000000"]
    again = ShardWriter(tmp_path, rank=2, shard_size=2)
    assert again.next_sequence == 1
    again.add(["c"], torch.randn(1, 4))  # the resumed run encodes "c" again
    again.close()
    assert list(shard_doc_ids(complete_shards(tmp_path))) == ["a", "b", "c"]


def test_shards_are_plain_npy_and_text(tmp_path):
    writer = ShardWriter(tmp_path, shard_size=4)
    writer.add(["x", "y"], torch.ones(2, 3))
    writer.close()
    [shard] = complete_shards(tmp_path)
    assert sorted(p.name for p in shard.path.iterdir()) == ["ids.txt", "shard.json", "vectors.npy"]
    np.testing.assert_array_equal(np.load(shard.path / "vectors.npy", allow_pickle=False), np.ones((2, 3), np.float32))


@given(st.sets(st.text(min_size=1, max_size=8), max_size=50), st.text(min_size=1, max_size=8))
def test_doc_id_set_membership(ids, other):
    found = DocIdSet(ids)
    assert len(found) == len(ids) and all(doc_id in found for doc_id in ids)
    assert (other in found) == (other in ids)


def test_mismatched_ids_file_is_refused(tmp_path):
    writer = ShardWriter(tmp_path, shard_size=4)
    writer.add(["x", "y"], torch.ones(2, 3))
    writer.close()
    [shard] = complete_shards(tmp_path)
    (shard.path / "ids.txt").write_text("x\n")
    with pytest.raises(Exception, match="holds 1 ids but shard.json counts 2"):
        shard.ids()
