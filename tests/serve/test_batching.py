"""DynamicBatcher in-process: concurrent items share one call, batches are bounded, answers go to their senders."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir.serve import DynamicBatcher
from boltir.serve.batching import InlineExecutor, in_executor


def run_batcher(items: list[int], max_batch_size: int, max_wait_ms: float, delay_s: float = 0.0):
    calls: list[list[int]] = []
    threads: set[str] = set()

    def process(batch: list[int]) -> list[int]:
        calls.append(list(batch))
        threads.add(threading.current_thread().name)
        time.sleep(delay_s)
        return [item * 10 for item in batch]

    async def main():
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as executor:
            batcher = DynamicBatcher(in_executor(process, executor), max_batch_size, max_wait_ms)
            answers = await asyncio.gather(*(batcher.submit(item) for item in items))
            await batcher.close()
            return answers

    return asyncio.run(main()), calls, threads


def test_concurrent_items_share_one_call():
    answers, calls, threads = run_batcher(list(range(20)), max_batch_size=64, max_wait_ms=20)
    assert answers == [i * 10 for i in range(20)]
    assert calls == [list(range(20))]
    assert threads and all(name.startswith("model") for name in threads)  # never the event loop's thread


def test_max_batch_size_one_answers_one_at_a_time():
    answers, calls, _ = run_batcher(list(range(5)), max_batch_size=1, max_wait_ms=20)
    assert answers == [0, 10, 20, 30, 40]
    assert calls == [[0], [1], [2], [3], [4]]


@settings(max_examples=25, deadline=None)
@given(items=st.lists(st.integers(), max_size=40), max_batch_size=st.integers(1, 8))
def test_every_item_is_answered_once_in_bounded_batches(items, max_batch_size):
    answers, calls, _ = run_batcher(items, max_batch_size, max_wait_ms=1)
    assert answers == [item * 10 for item in items]
    assert sorted(i for call in calls for i in call) == sorted(items)
    assert all(1 <= len(call) <= max_batch_size for call in calls)


def test_an_error_fails_its_batch_only():
    def process(batch: list[int]) -> list[int]:
        if 3 in batch:
            raise ValueError("three")
        return batch

    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = DynamicBatcher(in_executor(process, executor), max_batch_size=1, max_wait_ms=0)
            with pytest.raises(ValueError, match="three"):
                await batcher.submit(3)
            assert await batcher.submit(4) == 4
            await batcher.close()

    asyncio.run(main())


def test_wait_counts_from_arrival_so_a_queued_batch_starts_when_the_model_is_free():
    """Items that queued behind a running batch have waited already: the next batch starts as soon as the model is
    free (within their own ``max_wait_ms`` of arriving), not a further ``max_wait_ms`` after the last batch."""
    starts: list[float] = []

    def process(batch: list[int]) -> list[int]:
        starts.append(time.perf_counter())
        time.sleep(0.4)
        return batch

    async def main() -> float:
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = DynamicBatcher(in_executor(process, executor), max_batch_size=8, max_wait_ms=400)
            first = asyncio.ensure_future(batcher.submit(0))
            await asyncio.sleep(0.5)  # the first batch (dispatched at its 400 ms deadline) is running now
            queued_at = time.perf_counter()
            await asyncio.gather(first, batcher.submit(1), batcher.submit(2))
            await batcher.close()
            return queued_at

    queued_at = asyncio.run(main())
    assert len(starts) == 2
    # their deadline is 400 ms after queued_at; counted from the end of the first batch it would be ~700 ms
    assert starts[1] - queued_at < 0.6


def test_inline_executor_runs_batches_on_the_event_loop_thread():
    """batching.model_thread: false: the batch function runs in the loop's own thread, still one call for items
    that arrive together, and its errors reach the items' senders."""
    calls: list[list[int]] = []
    threads: set[str] = set()

    def process(batch: list[int]) -> list[int]:
        if -1 in batch:
            raise ValueError("minus one")
        calls.append(list(batch))
        threads.add(threading.current_thread().name)
        return [item * 10 for item in batch]

    async def main():
        batcher = DynamicBatcher(in_executor(process, InlineExecutor()), max_batch_size=64, max_wait_ms=20)
        answers = await asyncio.gather(*(batcher.submit(item) for item in range(12)))
        with pytest.raises(ValueError, match="minus one"):
            await batcher.submit(-1)
        assert await batcher.submit(5) == 50  # the batcher goes on after a failed batch
        await batcher.close()
        return answers, threading.current_thread().name

    answers, loop_thread = asyncio.run(main())
    assert answers == [i * 10 for i in range(12)]
    assert calls[0] == list(range(12))
    assert threads == {loop_thread}


def test_recent_reports_each_batch_size_and_how_long_process_ran():
    def process(batch: list[int]) -> list[int]:
        time.sleep(0.02 if len(batch) > 1 else 0.0)
        return batch

    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = DynamicBatcher(in_executor(process, executor), max_batch_size=4, max_wait_ms=50)
            assert batcher.recent() == {"seconds": 5.0, "batches": 0}
            await asyncio.gather(*(batcher.submit(item) for item in range(8)))  # two full batches of four
            await batcher.submit(9)  # and one of one
            recent = batcher.recent()
            await batcher.close()
            return recent

    recent = asyncio.run(main())
    assert recent["batches"] == 3 and recent["mean_size"] == 3.0
    assert 20 <= recent["process_ms"]["p50"] < 200 and recent["process_ms"]["max"] >= recent["process_ms"]["p50"]
    assert 0.008 <= recent["busy"] < 0.2  # 40 ms of 5 s
    assert recent["start_ms"]["p99"] >= 0 and recent["answer_ms"]["p99"] >= 0


def test_recent_leaves_out_batches_older_than_its_window():
    async def main():
        batcher = DynamicBatcher(in_executor(lambda batch: batch, InlineExecutor()), max_batch_size=2, max_wait_ms=0)
        await batcher.submit(1)
        await asyncio.sleep(0.2)
        await batcher.submit(2)
        recent = batcher.recent(seconds=0.1), batcher.recent(seconds=5)
        await batcher.close()
        return recent

    short, long = asyncio.run(main())
    assert short["batches"] == 1 and long["batches"] == 2
