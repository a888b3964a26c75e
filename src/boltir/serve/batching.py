"""Dynamic batching: concurrent requests' items share one call of a batch function (the model's, in its thread or
process)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, Generic, NamedTuple, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class TimedBatch(NamedTuple, Generic[Result]):
    """A batch function's answers, one per item, and when (``time.monotonic()``, s) the work began and ended.

    Where the work ran in another process the times are that process's: on Linux the monotonic clock is the
    system's, so they compare with this process's."""

    results: Sequence[Result]
    began: float
    ended: float


BatchFunction = Callable[[list[Item]], Awaitable[TimedBatch[Result]]]


def in_executor(process: Callable[[list[Item]], Sequence[Result]], executor: Executor) -> BatchFunction[Item, Result]:
    """A :class:`DynamicBatcher`'s batch function that runs ``process`` in ``executor`` (the model thread)."""

    def timed(items: list[Item]) -> TimedBatch[Result]:
        began = time.monotonic()
        return TimedBatch(process(items), began, time.monotonic())

    async def run(items: list[Item]) -> TimedBatch[Result]:
        return await asyncio.get_running_loop().run_in_executor(executor, timed, items)

    return run


class DynamicBatcher(Generic[Item, Result]):
    """Collects items submitted from the event loop and answers them with ``await process(items)``, one call per
    batch and one batch at a time.

    ``process`` is a coroutine function that hands the work off the event loop: :func:`in_executor` runs a
    function in the model thread, :meth:`boltir.serve.process.ModelProcessService.rank` sends the batch to the
    model process. A batch starts with the first waiting item and takes whatever else arrives within
    ``max_wait_ms`` of that item's arrival, at most ``max_batch_size`` items. While ``process`` runs new items
    queue up; under load their wait is over by the time the batch ends, so the next batch starts at
    once with what is there instead of leaving the model idle for another ``max_wait_ms``. ``max_batch_size=1``
    answers items one at a time, in arrival order.

    An item costs the event loop a deque append and a future; the serving task is woken once per batch (when the
    first item arrives, when the batch is full, or at its deadline), not once per item as an ``asyncio.Queue``
    with a timed ``get`` per item did (a task and a timer for every item, under load a tenth of a request's cost).

    The last ``history`` batches' timings are kept for :meth:`recent` (``GET /health`` reports them).
    """

    def __init__(
        self, process: BatchFunction[Item, Result], max_batch_size: int, max_wait_ms: float, history: int = 4096,
    ) -> None:
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.pending: deque[tuple[Item, asyncio.Future[Result], float]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.batches = 0  # batches run and items answered so far (GET /health reports them)
        self.items = 0
        self._wakeup: asyncio.Future[None] | None = None  # the serving task waits on it for ``_wanted`` items
        self._wanted = 1
        # per batch (monotonic s): handed to ``process``, its work began, its work ended, answers set; its size
        self.timings: deque[tuple[float, float, float, float, int]] = deque(maxlen=history)

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """A future of ``process([..., item, ...])``'s answer for ``item``; an exception of ``process`` is raised
        when it is awaited. Call it from the event loop; cancelling the future drops the item if it has not run."""
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._serve())
        future: asyncio.Future[Result] = loop.create_future()
        self.pending.append((item, future, time.monotonic()))
        if len(self.pending) >= self._wanted and self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return future

    async def _wait(self, wanted: int, timeout: float | None) -> None:
        """Until ``wanted`` items are pending, or ``timeout`` seconds have passed."""
        loop = asyncio.get_running_loop()
        self._wanted, self._wakeup = wanted, loop.create_future()
        timer = loop.call_later(timeout, _wake, self._wakeup) if timeout is not None else None
        try:
            await self._wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _collect(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        if not self.pending:
            await self._wait(1, None)
        deadline = self.pending[0][2] + self.max_wait  # from its arrival: time spent queued behind a batch counts
        while len(self.pending) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self._wait(self.max_batch_size, remaining)
        taken = [self.pending.popleft() for _ in range(min(len(self.pending), self.max_batch_size))]
        return [(item, future) for item, future, _ in taken if not future.done()]  # done: the client left

    async def _serve(self) -> None:
        while True:
            batch = await self._collect()
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            handed = time.monotonic()
            try:
                results, began, ended = await self.process([item for item, _ in batch])
            except Exception as exc:  # the batch's requests fail; the batcher, and the server, go on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            self.timings.append((handed, began, ended, time.monotonic(), len(batch)))

    def recent(self, seconds: float = 5.0) -> dict[str, Any]:
        """Timings of the batches answered in the last ``seconds``: how many, their mean size, how long ``process``
        took (p50/p99/max ms), the share of the window it was running (``busy``: near 1, the model is the bound),
        and how long a batch waited to start (in the model thread or process) and for the event loop to take its
        answers (``start_ms``/``answer_ms``: the GIL, the socket or a busy event loop, not the model)."""
        since = time.monotonic() - seconds
        batches = [t for t in self.timings if t[3] >= since]
        if not batches:
            return {"seconds": seconds, "batches": 0}

        def percentiles(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            return {"p50": round(1000 * statistics.median(ordered), 2),
                    "p99": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
                    "max": round(1000 * ordered[-1], 2)}

        process = [ended - began for _, began, ended, _, _ in batches]
        return {"seconds": seconds, "batches": len(batches),
                "mean_size": round(sum(t[4] for t in batches) / len(batches), 2),
                "busy": round(sum(process) / seconds, 3), "process_ms": percentiles(process),
                "start_ms": percentiles([began - handed for handed, began, _, _, _ in batches]),
                "answer_ms": percentiles([answered - ended for _, _, ended, answered, _ in batches])}

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass


class InlineExecutor(Executor):
    """Runs each call at once in the calling thread: a :class:`DynamicBatcher` whose batch function is
    :func:`in_executor` on it runs its batches on the event loop (``batching.model_thread: false``), and
    ``run_in_executor`` hands back a finished future."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # the awaiting request sees it, as it would from a thread
            future.set_exception(exc)
        return future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
