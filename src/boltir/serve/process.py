"""The model side of the service in a process of its own (``batching.model_process``), over a Unix socket.

In one process the model thread and the event loop share one GIL. torch lets go of it around every operation, a
forward pass is hundreds of them, and each waits to get it back while the event loop is answering requests: under
load on a GPU a batch of 32 took 25 ms where it takes 11–14 alone. Here the model, index and re-ranker run in a child
process with a GIL of its own; the server keeps the corpus and makes the hits. A batch crosses a Unix socket as one
length-prefixed JSON message (never pickle) and comes back as ranked ``(doc_id, score)`` pairs: a few hundred bytes a
query. The server's side is the event loop's own (an asyncio protocol): a message is written by the coroutine that
sends it, at once, and each reply resolves its caller's future in the callback that reads it. A relay thread needed
the GIL to start each batch and waited about one switch interval (5 ms) for it under load; a task per exchange
started only after the loop's other ready callbacks (under load, ~5 ms of requests' hits and responses).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import multiprocessing
import select
import signal
import socket
import struct
import sys
import time
from collections import deque
from typing import Any, BinaryIO

from ..errors import BoltirError, ConfigError
from .config import ServeConfig
from .batching import TimedBatch
from .service import Corpus, Hit, SearchRequest, SearchService, hits, resolve_device

try:  # optional: the serve extra installs it
    import orjson

    _dumps, _loads = orjson.dumps, orjson.loads
except ImportError:  # pragma: no cover
    def _dumps(value: Any) -> bytes:
        return json.dumps(value).encode("utf-8")

    _loads = json.loads

log = logging.getLogger("boltir.serve")
_LENGTH = struct.Struct("!Q")  # a message: its length in bytes, then that many bytes of JSON


class ModelProcessExited(BoltirError):
    """The model process died while answering; the server starts a new one for the next batch (answered 503)."""


def uses_model_process(config: ServeConfig) -> bool:
    """``batching.model_process``, or when unset, whether the service runs on a GPU."""
    if config.batching.model_process is not None:
        return config.batching.model_process
    return resolve_device(config.device).type == "cuda"


def open_service(config: ServeConfig) -> SearchService | ModelProcessService:
    """The service ``config`` asks for: the model in this process, or in a process of its own."""
    return ModelProcessService(config) if uses_model_process(config) else SearchService(config)


class ModelProcessService:
    """:class:`SearchService`'s interface, with the model, index and re-ranker in a child process.

    :meth:`rank`, :meth:`rerank` and :meth:`encode` are coroutines for the server's event loop. The model process
    answers messages in the order they were sent; a caller that is cancelled has its answer read and dropped."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._process: multiprocessing.process.BaseProcess | None = None
        self._socket: socket.socket | None = None
        self._connection: _ModelConnection | None = None  # made on the event loop, at the first call
        self._restart = asyncio.Lock()  # one (re)start at a time
        ready = self._start()
        self.model_name: str = ready["model_name"]
        self.reranker_name: str | None = ready["reranker_name"]
        self.index_name, self.engine, self.documents = ready["index_name"], ready["engine"], ready["documents"]
        self.corpus = Corpus(config.corpus)
        self.corpus.check_covers(ready["doc_ids"], config.corpus)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model_name, "index": self.index_name, "engine": self.engine,
                "documents": self.documents, "reranker": self.reranker_name, "model_process": self.pid}

    async def rank(self, requests: list[SearchRequest]) -> TimedBatch[list[tuple[str, float]]]:
        """Each request's ranked ``(doc_id, score)`` pairs, with when the model process began and ended them."""
        reply = await self._call({"op": "rank", "requests": [[r.query, r.k, r.rerank] for r in requests]})
        return TimedBatch(reply["ok"], reply["began"], reply["ended"])

    def hits(self, ranking: list[tuple[str, float]], query: str) -> list[Hit]:
        return hits(self.corpus, ranking, query, self.config.limits.snippet_chars)

    async def rerank(self, query: str, texts: list[str]) -> list[float]:
        return (await self._call({"op": "rerank", "query": query, "texts": texts}))["ok"]

    async def encode(self, texts: list[str], side: str) -> dict[str, Any]:
        return (await self._call({"op": "encode", "texts": texts, "side": side}))["ok"]

    def close(self) -> None:
        """Stop the model process (it stops by itself, too, when the server's end of the socket closes)."""
        self._stop()

    def _start(self) -> dict[str, Any]:
        """Start a model process and wait until it has loaded (blocking: seconds)."""
        context = multiprocessing.get_context("spawn")  # CUDA does not survive a fork
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        values = dataclasses.asdict(self.config)
        # multiprocessing hands a socket argument to the spawned child as a duplicated descriptor
        process = context.Process(target=_model_main, args=(values, theirs), name="boltir-model", daemon=True)
        process.start()
        theirs.close()

        def died() -> ConfigError:
            ours.close()
            process.join(5)
            return ConfigError(f"boltir serve: the model process exited with status {process.exitcode} while loading "
                               "(its error is logged above).")

        while not select.select([ours], [], [], 0.2)[0]:  # loading takes seconds; a child that dies says so
            if not process.is_alive():
                raise died()
        with ours.makefile("rb") as stream:
            reply = _read_message(stream)
        if reply is None:
            raise died()
        if "error" in reply:
            process.join(10)
            ours.close()
            raise ConfigError(reply["error"]) if reply.get("boltir") else RuntimeError(reply["error"])
        self._process, self._socket, self._connection = process, ours, None
        log.info("model process %d ready", process.pid)
        return reply["ready"]

    def _stop(self) -> None:
        self._disconnect()
        self._reap()

    def _disconnect(self) -> None:
        """Close the server's end of the socket (on the event loop's thread, where its transport lives)."""
        if self._socket is not None:
            try:  # the child sees the end of its input at once, whether or not an event loop closes the transport
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                if self._connection is not None and self._connection.transport is not None:
                    self._connection.transport.close()
            except RuntimeError:  # its event loop has ended (asyncio.run returned before close): no one reads it
                pass
            self._socket.close()
            self._socket = self._connection = None

    def _reap(self) -> None:
        """Wait for the model process to end (it does when its input ends), killing it after 10 s."""
        if self._process is not None:
            self._process.join(10)
            if self._process.exitcode is None:
                self._process.kill()
                self._process.join()
            self._process = None

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection
        if connection is None or connection.lost:
            connection = await self._connect()
        pid = self.pid
        try:
            reply = await connection.send(_dumps(message))
        except ConnectionError:
            async with self._restart:
                if self._connection is connection:
                    self._disconnect()
                    await asyncio.get_running_loop().run_in_executor(None, self._reap)
            raise ModelProcessExited(f"the model process ({pid}) exited during this batch; a new one starts "
                                     "for the next") from None
        if "error" in reply:
            raise (BoltirError if reply.get("boltir") else RuntimeError)(reply["error"])
        return reply

    async def _connect(self) -> _ModelConnection:
        """The event loop's connection to a live model process, starting one when the last has died."""
        async with self._restart:  # callers that waited here find the one the first of them made
            if self._connection is not None and not self._connection.lost:
                return self._connection
            loop = asyncio.get_running_loop()
            if self._connection is not None:  # lost: its process has ended or is ending
                self._disconnect()
                await loop.run_in_executor(None, self._reap)
            if self._socket is None:  # off the loop: loading takes seconds
                await loop.run_in_executor(None, self._start)
            _, self._connection = await loop.create_unix_connection(_ModelConnection, sock=self._socket)
            return self._connection


class _ModelConnection(asyncio.Protocol):
    """The server's end of the socket: :meth:`send` writes a message at once and returns the future its reply
    resolves, in :meth:`data_received`, in the order sent. A future whose caller was cancelled is skipped."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._buffer = bytearray()
        self._waiting: deque[asyncio.Future[dict[str, Any]]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()

    def send(self, message: bytes) -> asyncio.Future[dict[str, Any]]:
        if self.lost or self.transport is None:
            raise ConnectionResetError("the model process's socket is closed")
        if asyncio.get_running_loop() is not self.loop:  # its replies are read on that loop only: it would hang
            raise RuntimeError("a ModelProcessService answers on the one event loop that first called it")
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._waiting.append(future)
        self.transport.write(_LENGTH.pack(len(message)) + message)
        return future

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            end = _LENGTH.size + _LENGTH.unpack_from(self._buffer)[0]
            if len(self._buffer) < end:
                return
            reply = _loads(bytes(self._buffer[_LENGTH.size:end]))
            del self._buffer[:end]
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionResetError("the model process's socket closed"))


def _read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message on a blocking stream, or None when the other end has closed it."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    size = _LENGTH.unpack(header)[0]
    payload = stream.read(size)
    return _loads(payload) if len(payload) == size else None


def _send_message(connection: socket.socket, message: dict[str, Any]) -> None:
    payload = _dumps(message)
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def _model_main(values: dict[str, Any], connection: socket.socket) -> None:
    """The model process: load the service, then answer the server's messages until its end of the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops this one
    # boltir's own lines only: at INFO, libraries it imports here (faiss's loader) print their start-up chatter
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s [%(process)d] %(message)s", stream=sys.stderr)
    logging.getLogger("boltir").setLevel(logging.INFO)
    config = ServeConfig.from_dict(values, "boltir serve model process config")
    stream = connection.makefile("rb")
    try:
        service = SearchService(config, texts=False)
    except BoltirError as exc:
        _send_message(connection, {"error": str(exc), "boltir": True})
        return
    except Exception as exc:  # noqa: BLE001 - the server reports it and exits
        log.error("the model process could not load", exc_info=exc)
        _send_message(connection, {"error": f"the model process could not load ({type(exc).__name__}: {exc})"})
        return
    _send_message(connection, {"ready": {
        "model_name": service.model_name, "reranker_name": service.reranker_name, "index_name": service.index_name,
        "engine": service.engine, "documents": service.documents, "doc_ids": list(service.doc_ids())}})
    while True:
        try:
            message = _read_message(stream)
        except OSError:
            return
        if message is None:
            return
        try:
            began = time.monotonic()
            op = message["op"]
            if op == "rank":
                answer: Any = service.rank([SearchRequest(q, k, rerank) for q, k, rerank in message["requests"]])
            elif op == "rerank":
                answer = service.rerank(message["query"], message["texts"])
            else:
                answer = service.encode(message["texts"], message["side"])
            reply = {"ok": answer, "began": began, "ended": time.monotonic()}
        except BoltirError as exc:
            reply = {"error": str(exc), "boltir": True}
        except Exception as exc:  # noqa: BLE001 - the batch fails, the process goes on
            log.error("error in the model process", exc_info=exc)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            _send_message(connection, reply)
        except OSError:  # the server has gone
            return
