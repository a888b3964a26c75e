"""The real server over HTTP: endpoints, answers equal to searching the index directly, shutdown, log lines."""

from __future__ import annotations

import asyncio
import signal

import httpx
import numpy as np
import pytest
import torch

from boltir import BiEncoderModule, open_searcher

from .conftest import ServerProcess, serve_config

QUERIES = ["what is the capital of germany", "what causes the ocean tide", "neural ranking", "cancer genes in mice"]


@pytest.fixture(scope="module")
def direct(tiny_collection):
    """The same model and index used in-process: what the server must answer."""
    module = BiEncoderModule(str(tiny_collection["model"]))
    searcher = open_searcher(tiny_collection["index_dir"])

    def search(query: str, k: int) -> list[tuple[str, float]]:
        scores, ids = searcher.search_arrays(module.encode_queries([query]), k)
        return list(zip(ids[0], scores[0].tolist()))

    return module, search


def test_health_names_model_index_and_documents(server, tiny_collection):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok"
    assert health["documents"] == len(tiny_collection["docs"])
    assert health["index"] == tiny_collection["index_dir"].name
    assert health["model"] == str(tiny_collection["model"])


def test_get_search_ranks_like_the_index_with_corpus_titles_and_texts(server, tiny_collection, direct):
    _, search = direct
    titles = {doc_id: (title, text) for doc_id, title, text in tiny_collection["docs"]}
    for query in QUERIES:
        answer = httpx.get(server.url + "/search", params={"q": query, "k": 3}).json()
        expected = search(query, 3)
        assert [h["doc_id"] for h in answer["hits"]] == [doc_id for doc_id, _ in expected]
        assert [h["score"] for h in answer["hits"]] == pytest.approx([s for _, s in expected], abs=1e-5)
        assert [h["rank"] for h in answer["hits"]] == [1, 2, 3]
        for hit in answer["hits"]:
            title, text = titles[hit["doc_id"]]
            assert hit["title"] == title
            assert hit["text"].strip("…") in text and len(hit["text"].strip("…")) <= 40  # limits.snippet_chars
        assert answer["took_ms"] > 0


def test_post_search_answers_every_query_as_get_does(server):
    posted = httpx.post(server.url + "/search", json={"queries": QUERIES, "k": 4}).json()
    assert [r["query"] for r in posted["results"]] == QUERIES
    for result in posted["results"]:
        alone = httpx.get(server.url + "/search", params={"q": result["query"], "k": 4}).json()
        assert [h["doc_id"] for h in result["hits"]] == [h["doc_id"] for h in alone["hits"]]
        assert [h["score"] for h in result["hits"]] == pytest.approx([h["score"] for h in alone["hits"]], abs=1e-5)


def test_get_search_reads_its_parameters_as_a_query_string(server):
    """Percent-encoded UTF-8, a repeated parameter (the last counts, as in Starlette), rerank=false and unknown
    parameters: GET /search is answered ahead of FastAPI's routing, so it parses the query string itself."""
    query = "café gènes – tide"
    posted = httpx.post(server.url + "/search", json={"queries": [query], "k": 2}).json()["results"][0]
    answer = httpx.get(server.url + "/search", params=[("k", "5"), ("q", query), ("k", "2"), ("rerank", "false"),
                                                       ("page", "7")]).json()
    assert answer["query"] == query
    assert [h["doc_id"] for h in answer["hits"]] == [h["doc_id"] for h in posted["hits"]]
    raw = httpx.get(server.url + "/search?q=caf%C3%A9+g%C3%A8nes+%E2%80%93+tide&k=2&k=2").json()
    assert raw["query"] == query and len(raw["hits"]) == 2
    assert httpx.head(server.url + "/search", params={"q": "tide"}).status_code == 405


def test_concurrent_queries_get_their_own_answers(server):
    """Queries batched together (the server's max wait is 5 ms) come back to the request that sent each."""
    singles = {q: httpx.get(server.url + "/search", params={"q": q, "k": 5}).json()["hits"] for q in QUERIES}

    async def fire() -> list[tuple[str, dict]]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            queries = QUERIES * 8
            answers = await asyncio.gather(*(client.get("/search", params={"q": q, "k": 5}) for q in queries))
            return [(q, a.json()) for q, a in zip(queries, answers)]

    for query, answer in asyncio.run(fire()):
        assert [h["doc_id"] for h in answer["hits"]] == [h["doc_id"] for h in singles[query]]
        assert [h["score"] for h in answer["hits"]] == pytest.approx([h["score"] for h in singles[query]], abs=1e-5)


def test_batches_on_the_event_loop_answer_as_the_model_thread_does(tiny_collection, tmp_path, server):
    """batching.model_thread: false: concurrent queries still share forward passes, each answer goes to its sender
    and equals the default server's; /rerank and /encode run on the loop too."""
    config = serve_config(tiny_collection, batching={"max_batch_size": 16, "max_wait_ms": 5, "model_thread": False})
    process = ServerProcess(config, tmp_path)
    try:
        queries = QUERIES * 8

        async def fire(url: str) -> list[dict]:
            async with httpx.AsyncClient(base_url=url) as client:
                answers = await asyncio.gather(*(client.get("/search", params={"q": q, "k": 5}) for q in queries))
                return [a.json()["hits"] for a in answers]

        inline, threaded = asyncio.run(fire(process.url)), asyncio.run(fire(server.url))
        for hits, expected in zip(inline, threaded):
            assert [h["doc_id"] for h in hits] == [h["doc_id"] for h in expected]
            assert [h["score"] for h in hits] == pytest.approx([h["score"] for h in expected], abs=1e-5)
        batching = httpx.get(process.url + "/health").json()["batching"]
        assert batching["model_thread"] is False and batching["queries"] == len(queries)
        assert batching["batches"] < len(queries)  # shared forward passes
        assert batching["recent"]["batches"] == batching["batches"] and batching["recent"]["mean_size"] > 1
        documents = [{"text": "berlin is the capital of germany"}, {"text": "the moon causes the ocean tide"}]
        for path, body in (("/rerank", {"query": QUERIES[1], "documents": documents}), ("/encode", {"texts": ["berlin"], "side": "query"})):
            inline_answer, threaded_answer = (httpx.post(url + path, json=body).json() for url in (process.url, server.url))
            assert inline_answer.keys() == threaded_answer.keys()
            key = "scores" if path == "/rerank" else "vectors"
            assert np.allclose(inline_answer[key], threaded_answer[key], atol=1e-5)
    finally:
        process.stop()


def test_rerank_scores_and_orders_documents_with_the_model(server, direct):
    module, _ = direct
    documents = [{"doc_id": "a", "text": "paris is the capital of france"}, {"text": "berlin is the capital of germany"},
                 {"doc_id": "c", "text": "the moon causes the ocean tide"}]
    answer = httpx.post(server.url + "/rerank", json={"query": QUERIES[0], "documents": documents}).json()
    expected = module.score(QUERIES[0], [d["text"] for d in documents]).scores.tolist()
    assert answer["scores"] == pytest.approx(expected, abs=1e-5)
    order = sorted(range(3), key=lambda i: -expected[i])
    assert [r["index"] for r in answer["ranking"]] == order
    assert [r["doc_id"] for r in answer["ranking"]] == [["a", "1", "c"][i] for i in order]


@pytest.mark.parametrize("side", ["query", "doc"])
def test_encode_returns_the_model_vectors(server, direct, side):
    module, _ = direct
    texts = ["berlin capital", "ocean tide"]
    answer = httpx.post(server.url + "/encode", json={"texts": texts, "side": side}).json()
    expected = module.encode_queries(texts) if side == "query" else module.encode_docs(texts)
    assert answer["representation"] == "dense" and answer["dim"] == expected.shape[1]
    assert torch.allclose(torch.tensor(answer["vectors"]), expected.float(), atol=1e-5)


def test_page_is_one_self_contained_html_file(server):
    response = httpx.get(server.url + "/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script>" in page and "<style>" in page
    for external in ("http://", "https://", "src=", "<link", "@import"):
        assert external not in page


def test_one_log_line_per_request(server):
    before = server.output().count("GET /health 200")
    for _ in range(3):
        httpx.get(server.url + "/health")
    httpx.get(server.url + "/search", params={"q": "", "k": 1})
    log = server.output()
    assert log.count("GET /health 200") == before + 3
    assert "GET /search 422" in log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_shuts_down_cleanly_on_signal_while_answering(tiny_collection, tmp_path, sig):
    process = ServerProcess(serve_config(tiny_collection), tmp_path)

    async def load() -> list[int]:
        async with httpx.AsyncClient(base_url=process.url) as client:
            requests = [client.get("/search", params={"q": q, "k": 3}) for q in QUERIES * 4]
            return [r.status_code for r in await asyncio.gather(*requests)]

    assert set(asyncio.run(load())) == {200}
    code = process.stop(sig)
    assert code == 0, process.output()
    assert "Finished server process" in process.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(process.url + "/health", timeout=2)


def test_workers_share_the_port_answer_alike_and_stop_together(tiny_collection, tmp_path, direct):
    """--workers 2: two processes behind one port, connections spread over both (SO_REUSEPORT), each answering as
    the index does; SIGTERM stops both and the command ends with status 0."""
    process = ServerProcess(serve_config(tiny_collection), tmp_path, ("--workers", "2"))
    _, search = direct
    pids: set[int] = set()
    for _ in range(200):  # a fresh connection each time: the kernel hashes each one to a worker
        with httpx.Client(base_url=process.url, timeout=30) as client:
            health = client.get("/health").json()
            assert health["workers"] == 2 and health["documents"] == 6
            pids.add(health["pid"])
            hits = client.get("/search", params={"q": QUERIES[0], "k": 3}).json()["hits"]
            assert [h["doc_id"] for h in hits] == [doc for doc, _ in search(QUERIES[0], 3)]
        if len(pids) == 2:
            break
    assert len(pids) == 2, f"only worker(s) {pids} answered 200 connections:\n{process.output()}"
    assert process.process.pid not in pids  # the parent supervises; workers answer
    code = process.stop(signal.SIGTERM)
    assert code == 0, process.output()
    assert process.output().count("Finished server process") == 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(process.url + "/health", timeout=2)


def test_a_worker_that_cannot_start_stops_the_server_with_one_line(tiny_collection, tmp_path):
    config = serve_config(tiny_collection, corpus=str(tmp_path / "missing.jsonl"))
    with pytest.raises(RuntimeError, match="boltir serve exited") as failure:
        ServerProcess(config, tmp_path, ("--workers", "2"))
    log = str(failure.value)
    assert "missing.jsonl: file not found" in log and "exited with status 2" in log
    assert log.count("Traceback") <= 1  # the workers' error is one line each (only python -m's own traceback remains)
