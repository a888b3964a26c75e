"""The FastAPI app: /health, /search, /rerank, /encode and the search page, over one :class:`SearchService`.

Model work runs in a model process (``batching.model_process``, see :mod:`boltir.serve.process`), or in one worker
thread (torch is never called from two threads at once, and the event loop keeps answering while a batch runs), or
with ``batching.model_thread: false`` on the event loop itself; search queries go through a :class:`DynamicBatcher`
so that concurrent requests share forward passes. Every error a client can cause is answered 4xx with
``{"error": "..."}`` naming the field.

``GET /search``, the request a search page and most clients send under load, is answered by :class:`RequestGuard`
ahead of FastAPI's routing: its parameters are read by the standard library and checked by the same pydantic
constraints, and the model thread shares the GIL with the event loop, so the ~70 µs a request FastAPI's routing,
dependency solving and exception layers cost were a third of the event loop's time per query.
"""

# no `from __future__ import annotations`: FastAPI and pydantic read these annotations at run time, and
# they name limits known only inside create_app

import asyncio
import gc
import json
import logging
import os
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal

from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import BoltirError
from .batching import BatchFunction, DynamicBatcher, InlineExecutor, in_executor
from .config import LimitsConfig
from .page import search_page
from .process import ModelProcessExited, ModelProcessService
from .service import Hit, SearchRequest, SearchService

try:  # optional: the serve extra installs it
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

log = logging.getLogger("boltir.serve")


class ClientError(Exception):
    """A request the service cannot answer as asked; ``field`` names what to change."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status


class FastJSONResponse(Response):
    """JSON by orjson (several times faster than the standard library's, and it writes dataclasses such as
    :class:`Hit` directly: ``dataclasses.asdict`` cost more than the rest of a reply); the standard library's
    where orjson is not installed."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            return orjson.dumps(content)
        return json.dumps(content, default=asdict, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _error_response(exc: Exception, method: str, path: str) -> JSONResponse:
    """The 4xx/5xx answer to an exception raised while answering ``method path``."""
    if isinstance(exc, (RequestValidationError, ValidationError)):
        return _error(*_validation_message(exc))
    if isinstance(exc, ClientError):
        return _error(exc.status, str(exc))
    if isinstance(exc, ModelProcessExited):
        log.error("%s %s: %s", method, path, exc)
        return _error(503, str(exc))
    if isinstance(exc, BoltirError):
        return _error(422, str(exc))
    if isinstance(exc, StarletteHTTPException):
        return _error(exc.status_code, f"{path}: {exc.detail}")
    log.error("error answering %s %s", method, path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); the server keeps running")


def _field_name(location: tuple[Any, ...]) -> str:
    """``("body", "queries", 3)`` → ``queries[3]``; the body itself is ``body``."""
    parts = list(location[1:] if location and location[0] in ("body", "query", "path") else location) or ["body"]
    name = str(parts[0])
    for part in parts[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _validation_message(exc: RequestValidationError | ValidationError) -> tuple[int, str]:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return 400, f"body: malformed JSON ({first.get('ctx', {}).get('error', 'cannot parse')})"
    return 422, f"{_field_name(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"


def request_models(limits: LimitsConfig) -> dict[str, type[BaseModel]]:
    """The request bodies and ``GET /search``'s parameters, with the configured limits in their field constraints."""
    Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.max_query_chars)]
    K = Annotated[int, Field(gt=0, le=limits.max_k)]
    strict = ConfigDict(extra="forbid", strict=True)

    class SearchParams(BaseModel):
        model_config = ConfigDict(extra="ignore")  # parameters are strings: "5" is a k, "false" a rerank
        q: Annotated[str, StringConstraints(min_length=1, max_length=limits.max_query_chars)]
        k: K = 10
        rerank: bool | None = None

    class SearchBody(BaseModel):
        model_config = strict
        queries: Annotated[list[Text], Field(min_length=1, max_length=limits.max_queries)]
        k: K = 10
        rerank: bool | None = None

    class Document(BaseModel):
        model_config = strict
        doc_id: str | None = None
        text: Annotated[str, StringConstraints(min_length=1)]

    class RerankBody(BaseModel):
        model_config = strict
        query: Text
        documents: Annotated[list[Document], Field(min_length=1, max_length=limits.max_queries)]

    class EncodeBody(BaseModel):
        model_config = strict
        texts: Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1, max_length=limits.max_queries)]
        side: Literal["query", "doc"] = "query"

    return {"search_params": SearchParams, "search": SearchBody, "rerank": RerankBody, "encode": EncodeBody}


class RequestGuard:
    """ASGI middleware: one log line per request (method, path, status, ms) and a bound on body size, also for
    chunked bodies without a Content-Length (read up to the bound, then handed on). ``direct`` maps a
    ``(method, path)`` to the ASGI endpoint that answers it here, ahead of FastAPI's routing."""

    def __init__(self, app: Any, max_body_bytes: int, direct: dict[tuple[str, str], ASGIApp] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.direct = direct or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def logged_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            endpoint = self.direct.get((scope["method"], scope["path"]))
            if endpoint is not None:
                return await endpoint(scope, receive, logged_send)
            body = await self._read_body(scope, receive)
            if body is None:
                response = _error(413, f"body: larger than the {self.max_body_bytes} bytes allowed (limits.max_body_bytes)")
                return await response(scope, receive, logged_send)
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if replayed:
                    return await receive()  # after the body: wait for the disconnect, as Starlette expects
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, logged_send)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the bound (by its Content-Length or by what arrived)."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def create_app(service: SearchService | ModelProcessService) -> FastAPI:
    """The app serving ``service``; its model thread and batcher live as long as the app runs."""
    config = service.config
    limits = config.limits
    models = request_models(limits)
    SearchParams, SearchBody = models["search_params"], models["search"]
    RerankBody, EncodeBody = models["rerank"], models["encode"]
    executor: Executor | None = None
    if isinstance(service, ModelProcessService):  # its calls are the event loop's own, over a socket
        rank: BatchFunction[SearchRequest, list[tuple[str, float]]] = service.rank
        rerank_scores, encode_texts = service.rerank, service.encode
    else:
        in_thread = executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="boltir-model")
                                if config.batching.model_thread else InlineExecutor())
        rank = in_executor(service.rank, in_thread)

        async def rerank_scores(query: str, texts: list[str]) -> list[float]:
            return await asyncio.get_running_loop().run_in_executor(in_thread, service.rerank, query, texts)

        async def encode_texts(texts: list[str], side: str) -> dict[str, Any]:
            return await asyncio.get_running_loop().run_in_executor(in_thread, service.encode, texts, side)

    # the batch function ranks; each request makes its own hits afterwards, on the event loop, so the model (in
    # its thread or process) starts the next batch while the last one's titles and snippets are cut
    batcher: DynamicBatcher[SearchRequest, list[tuple[str, float]]] = DynamicBatcher(
        rank, config.batching.max_batch_size, config.batching.max_wait_ms
    )
    page = search_page(reranker=service.reranker_name, max_k=limits.max_k)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the models, tokenizer and corpus are half a million objects that live as long as the server; a full
        # collection walked them all (0.5 s on a shared CPU, the p99 under load): frozen, collections skip them
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        await batcher.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        service.close()

    app = FastAPI(title="boltir", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.batcher = batcher

    def wants_rerank(rerank: bool | None) -> bool:
        if rerank and service.reranker_name is None:
            raise ClientError("rerank", "this service has no re-ranker configured (serve option reranker)")
        return service.reranker_name is not None if rerank is None else rerank

    async def run_queries(queries: list[str], k: int, rerank: bool | None) -> tuple[list[list[Hit]], float]:
        started = time.perf_counter()
        rerank_flag = wants_rerank(rerank)
        answers = [batcher.submit(SearchRequest(q, k, rerank_flag)) for q in queries]
        rankings = [await answers[0]] if len(answers) == 1 else await asyncio.gather(*answers)
        hits = [service.hits(ranking, q) for ranking, q in zip(rankings, queries)]
        return hits, round((time.perf_counter() - started) * 1000, 2)

    async def handle_error(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc, request.method, request.url.path)

    for caught in (RequestValidationError, ClientError, BoltirError, StarletteHTTPException, Exception):
        app.add_exception_handler(caught, handle_error)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({**service.health(), "workers": config.workers, "pid": os.getpid(),
                             "batching": {"batches": batcher.batches, "queries": batcher.items,
                                          "model_thread": config.batching.model_thread, "recent": batcher.recent()}})

    async def search_get(scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /search?q=...&k=10&rerank=...``: one query's hits (see the module's docstring for why it is ASGI)."""
        try:
            values = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            params = SearchParams.model_validate(values)
            if not params.q.strip():
                raise ClientError("q", "the query is empty")
            (hits,), took = await run_queries([params.q.strip()], params.k, params.rerank)
            response: Response = FastJSONResponse({"query": params.q, "hits": hits, "took_ms": took})
        except Exception as exc:  # as FastAPI's handlers answer the other routes
            response = _error_response(exc, "GET", "/search")
        await response(scope, receive, send)

    @app.post("/search")
    async def search_post(body: SearchBody) -> JSONResponse:  # type: ignore[valid-type]
        all_hits, took = await run_queries(body.queries, body.k, body.rerank)
        results = [{"query": q, "hits": h} for q, h in zip(body.queries, all_hits)]
        return FastJSONResponse({"results": results, "took_ms": took})

    @app.post("/rerank")
    async def rerank(body: RerankBody) -> JSONResponse:  # type: ignore[valid-type]
        started = time.perf_counter()
        texts = [d.text for d in body.documents]
        scores = await rerank_scores(body.query, texts)
        ids = [d.doc_id if d.doc_id is not None else str(i) for i, d in enumerate(body.documents)]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        ranked = [{"doc_id": ids[i], "index": i, "score": scores[i], "rank": r} for r, i in enumerate(order, start=1)]
        return JSONResponse({"scores": scores, "ranking": ranked, "model": service.reranker_name or service.model_name,
                             "took_ms": round((time.perf_counter() - started) * 1000, 2)})

    @app.post("/encode")
    async def encode(body: EncodeBody) -> JSONResponse:  # type: ignore[valid-type]
        started = time.perf_counter()
        encoded = await encode_texts(body.texts, body.side)
        return JSONResponse({**encoded, "took_ms": round((time.perf_counter() - started) * 1000, 2)})

    @app.get("/", response_class=HTMLResponse)
    async def index_page() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_middleware(RequestGuard, max_body_bytes=limits.max_body_bytes, direct={("GET", "/search"): search_get})
    return app
