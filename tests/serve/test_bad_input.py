"""Bad requests get a 4xx JSON error naming the field, never a 500, and never stop good requests being answered."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

# (method, path, request keywords, expected status, word the error must name); the server's limits are those of
# conftest.serve_config: max_k 5, max_query_chars 200, max_queries 8, max_body_bytes 4096
BAD = [
    ("GET", "/search", {"params": {"q": ""}}, 422, "q"),
    ("GET", "/search", {"params": {"q": "   "}}, 422, "q"),
    ("GET", "/search", {"params": {}}, 422, "q"),
    ("GET", "/search", {"params": {"q": "x" * 201}}, 422, "q"),
    ("GET", "/search", {"params": {"q": "tide", "k": 0}}, 422, "k"),
    ("GET", "/search", {"params": {"q": "tide", "k": -3}}, 422, "k"),
    ("GET", "/search", {"params": {"q": "tide", "k": 6}}, 422, "k"),
    ("GET", "/search", {"params": {"q": "tide", "k": "ten"}}, 422, "k"),
    ("GET", "/search", {"params": {"q": "tide", "rerank": "true"}}, 422, "rerank"),
    ("GET", "/search", {"params": {"q": "tide", "rerank": "maybe"}}, 422, "rerank"),
    ("POST", "/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
    ("POST", "/search", {"content": b"", "headers": {"content-type": "application/json"}}, 422, "body"),
    ("POST", "/search", {"json": ["tide"]}, 422, "body"),
    ("POST", "/search", {"json": {"queries": "tide"}}, 422, "queries"),
    ("POST", "/search", {"json": {"queries": []}}, 422, "queries"),
    ("POST", "/search", {"json": {"queries": ["tide", 3]}}, 422, "queries[1]"),
    ("POST", "/search", {"json": {"queries": ["tide", ""]}}, 422, "queries[1]"),
    ("POST", "/search", {"json": {"queries": ["x" * 201]}}, 422, "queries[0]"),
    ("POST", "/search", {"json": {"queries": ["tide"] * 9}}, 422, "queries"),
    ("POST", "/search", {"json": {"queries": ["tide"], "k": "5"}}, 422, "k"),
    ("POST", "/search", {"json": {"queries": ["tide"], "k": 0}}, 422, "k"),
    ("POST", "/search", {"json": {"queries": ["tide"], "k": 1.5}}, 422, "k"),
    ("POST", "/search", {"json": {"queries": ["tide"], "index_dir": "/etc"}}, 422, "index_dir"),
    ("POST", "/search", {"json": {"queries": ["tide " * 900]}}, 413, "body"),
    ("POST", "/rerank", {"json": {"query": "tide"}}, 422, "documents"),
    ("POST", "/rerank", {"json": {"query": "", "documents": [{"text": "a"}]}}, 422, "query"),
    ("POST", "/rerank", {"json": {"query": "tide", "documents": [{"text": 5}]}}, 422, "documents[0].text"),
    ("POST", "/rerank", {"json": {"query": "tide", "documents": ["a"]}}, 422, "documents[0]"),
    ("POST", "/encode", {"json": {"texts": ["a"], "side": "left"}}, 422, "side"),
    ("POST", "/encode", {"json": {"texts": "a"}}, 422, "texts"),
    ("POST", "/encode", {"json": {"texts": [None]}}, 422, "texts[0]"),
    ("GET", "/nowhere", {}, 404, "/nowhere"),
    ("DELETE", "/search", {}, 405, "/search"),
]


@pytest.mark.parametrize(("method", "path", "request_args", "status", "field"), BAD, ids=[f"{m} {p} {s} {f}" for m, p, _, s, f in BAD])
def test_bad_request_is_a_4xx_json_error_naming_the_field(server, method, path, request_args, status, field):
    response = httpx.request(method, server.url + path, **request_args)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in error


def test_chunked_body_over_the_limit_is_refused(server):
    def chunks():
        yield b'{"queries": ["'
        for _ in range(100):
            yield b"tide " * 20
        yield b'"]}'

    response = httpx.post(server.url + "/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "body" in response.json()["error"]


def test_hundreds_of_bad_requests_mixed_with_good_ones(server):
    """300 bad requests and 100 good ones, shuffled and sent concurrently: every bad one is a 4xx JSON error,
    every good one the answer the same query gets alone, and the server still answers afterwards."""
    queries = ["capital of germany", "ocean tide", "neural ranking", "cancer risk", "brain drug mice"]
    alone = {q: httpx.get(server.url + "/search", params={"q": q, "k": 3}).json()["hits"] for q in queries}
    rng = random.Random(0)
    jobs = [("bad", rng.choice(BAD)) for _ in range(300)] + [("good", queries[i % len(queries)]) for i in range(100)]
    rng.shuffle(jobs)

    async def fire():
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:
            async def send(kind, job):
                if kind == "good":
                    return await client.get("/search", params={"q": job, "k": 3})
                method, path, request_args, _, _ = job
                return await client.request(method, path, **request_args)
            return await asyncio.gather(*(send(kind, job) for kind, job in jobs))

    responses = asyncio.run(fire())
    for (kind, job), response in zip(jobs, responses):
        if kind == "good":
            assert response.status_code == 200
            hits = response.json()["hits"]
            assert [h["doc_id"] for h in hits] == [h["doc_id"] for h in alone[job]]
            assert [h["score"] for h in hits] == pytest.approx([h["score"] for h in alone[job]], abs=1e-5)
        else:
            assert response.status_code == job[3], (job, response.text)
            assert json.loads(response.text)["error"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert " 500 " not in server.output()
