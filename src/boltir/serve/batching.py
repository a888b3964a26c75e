"""Dynamic batching: concurrent requests' items share one call of a batch function, run in the model thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class DynamicBatcher(Generic[Item, Result]):
    """Collects items submitted from the event loop and answers them with ``process(items)``, one call per batch.

    A batch starts with the first waiting item and takes whatever else arrives within ``max_wait_ms`` of that
    item's arrival, at most ``max_batch_size`` items. While ``process`` runs (in ``executor``, off the event loop)
    new items queue up; under load their wait is over by the time the batch ends, so the next batch starts at
    once with what is there instead of leaving the model idle for another ``max_wait_ms``. ``max_batch_size=1``
    answers items one at a time, in arrival order.
    """

    def __init__(
        self, process: Callable[[list[Item]], Sequence[Result]], executor: Executor, max_batch_size: int, max_wait_ms: float
    ) -> None:
        self.process = process
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue: asyncio.Queue[tuple[Item, asyncio.Future[Result], float]] | None = None
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # every batch's size, for tests and the benchmark's report

    async def submit(self, item: Item) -> Result:
        """``process([..., item, ...])``'s answer for ``item``; an exception of ``process`` is raised here."""
        if self.task is None or self.task.done():
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._serve())
        assert self.queue is not None
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future, asyncio.get_running_loop().time()))
        return await future

    async def _collect(self) -> list[tuple[Item, asyncio.Future[Result], float]]:
        assert self.queue is not None
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = batch[0][2] + self.max_wait  # from its arrival: time spent queued behind a batch counts
        while len(batch) < self.max_batch_size:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [(item, future) for item, future, _ in await self._collect() if not future.done()]  # done: client left
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = await loop.run_in_executor(self.executor, self.process, [item for item, _ in batch])
            except Exception as exc:  # the batch's requests fail; the batcher, and the server, go on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
