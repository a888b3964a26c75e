"""The model side of the service in a process of its own (``batching.model_process``), behind a pipe.

In one process the model thread and the event loop share one GIL. torch lets go of it around every operation, a
forward pass is hundreds of them, and each waits to get it back while the event loop is answering requests: under
load on a GPU a batch of 32 took 25 ms where it takes 11–14 alone. Here the model, index and re-ranker run in a child
process with a GIL of its own; the server keeps the corpus and makes the hits. A batch crosses the pipe as JSON
(never pickle) and comes back as ranked ``(doc_id, score)`` pairs: a few hundred bytes a query.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from ..errors import BoltirError, ConfigError
from .config import ServeConfig
from .service import Corpus, Hit, SearchRequest, SearchService, hits, resolve_device

try:  # optional: the serve extra installs it
    import orjson

    _dumps, _loads = orjson.dumps, orjson.loads
except ImportError:  # pragma: no cover
    def _dumps(value: Any) -> bytes:
        return json.dumps(value).encode("utf-8")

    _loads = json.loads

log = logging.getLogger("boltir.serve")


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

    Calls come from one thread at a time (the app's model thread), as they do to a :class:`SearchService`."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
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

    def rank(self, requests: list[SearchRequest]) -> list[list[tuple[str, float]]]:
        return self._call({"op": "rank", "requests": [[r.query, r.k, r.rerank] for r in requests]})

    def hits(self, ranking: list[tuple[str, float]], query: str) -> list[Hit]:
        return hits(self.corpus, ranking, query, self.config.limits.snippet_chars)

    def rerank(self, query: str, texts: list[str]) -> list[float]:
        return self._call({"op": "rerank", "query": query, "texts": texts})

    def encode(self, texts: list[str], side: str) -> dict[str, Any]:
        return self._call({"op": "encode", "texts": texts, "side": side})

    def close(self) -> None:
        """Stop the model process (it also stops by itself when this process's end of the pipe closes)."""
        with self._lock:
            self._stop()

    def _start(self) -> dict[str, Any]:
        context = multiprocessing.get_context("spawn")  # CUDA does not survive a fork
        parent, child = context.Pipe()
        values = dataclasses.asdict(self.config)
        process = context.Process(target=_model_main, args=(values, child), name="boltir-model", daemon=True)
        process.start()
        child.close()

        def died() -> ConfigError:
            parent.close()
            process.join(5)
            return ConfigError(f"boltir serve: the model process exited with status {process.exitcode} while loading "
                               "(its error is logged above).")

        while not parent.poll(0.2):  # loading a model takes seconds; a child that died while loading says so
            if not process.is_alive():
                raise died()
        try:
            reply = _loads(parent.recv_bytes())
        except (EOFError, OSError):
            raise died() from None
        if "error" in reply:
            process.join(10)
            parent.close()
            raise ConfigError(reply["error"]) if reply.get("boltir") else RuntimeError(reply["error"])
        self._process, self._connection = process, parent
        log.info("model process %d ready", process.pid)
        return reply["ready"]

    def _stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(10)
            if self._process.exitcode is None:
                self._process.kill()
                self._process.join()
            self._process = None

    def _call(self, message: dict[str, Any]) -> Any:
        with self._lock:
            if self._connection is None:  # the last one died: a new one for this batch
                self._start()
            connection = self._connection
            assert connection is not None and self._process is not None
            try:
                connection.send_bytes(_dumps(message))
                reply = _loads(connection.recv_bytes())
            except (EOFError, OSError):
                pid, exitcode = self._process.pid, self._process.exitcode
                self._stop()
                raise ModelProcessExited(f"the model process ({pid}) exited (status {exitcode}) during this batch; "
                                         "a new one starts for the next") from None
        if "error" in reply:
            raise (BoltirError if reply.get("boltir") else RuntimeError)(reply["error"])
        return reply["ok"]


def _model_main(values: dict[str, Any], connection: Connection) -> None:
    """The model process: load the service, then answer the server's messages until its end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops this one
    # boltir's own lines only: at INFO, libraries it imports here (faiss's loader) print their start-up chatter
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s [%(process)d] %(message)s", stream=sys.stderr)
    logging.getLogger("boltir").setLevel(logging.INFO)
    config = ServeConfig.from_dict(values, "boltir serve model process config")
    try:
        service = SearchService(config, texts=False)
    except BoltirError as exc:
        connection.send_bytes(_dumps({"error": str(exc), "boltir": True}))
        return
    except Exception as exc:  # noqa: BLE001 - the server reports it and exits
        log.error("the model process could not load", exc_info=exc)
        connection.send_bytes(_dumps({"error": f"the model process could not load ({type(exc).__name__}: {exc})"}))
        return
    connection.send_bytes(_dumps({"ready": {
        "model_name": service.model_name, "reranker_name": service.reranker_name, "index_name": service.index_name,
        "engine": service.engine, "documents": service.documents, "doc_ids": list(service.doc_ids())}}))
    while True:
        try:
            message = _loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            op = message["op"]
            if op == "rank":
                answer: Any = service.rank([SearchRequest(q, k, rerank) for q, k, rerank in message["requests"]])
            elif op == "rerank":
                answer = service.rerank(message["query"], message["texts"])
            else:
                answer = service.encode(message["texts"], message["side"])
            reply = {"ok": answer}
        except BoltirError as exc:
            reply = {"error": str(exc), "boltir": True}
        except Exception as exc:  # noqa: BLE001 - the batch fails, the process goes on
            log.error("error in the model process", exc_info=exc)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        connection.send_bytes(_dumps(reply))
