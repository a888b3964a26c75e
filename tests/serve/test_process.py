"""batching.model_process: the model, index and re-ranker in a process of their own, behind the same HTTP API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import yaml

from boltir import CrossEncoderModule
from boltir.serve.config import ServeConfig
from boltir.serve.process import ModelProcessService
from boltir.serve.service import SearchRequest, SearchService

from .conftest import ROOT, ServerProcess, free_port, serve_config
from .test_server import QUERIES


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def servers(tiny_collection, tmp_path_factory):
    """The same config with a re-ranker, once with the model in its own process and once in the server's."""
    directory = tmp_path_factory.mktemp("serve-process")
    reranker = directory / "reranker"  # saved once: its head, random at first, is then the same in both servers
    CrossEncoderModule(str(tiny_collection["model"])).save_pretrained(reranker)
    config = serve_config(tiny_collection, reranker=str(reranker), rerank_depth=4)
    apart = ServerProcess({**config, "batching": {**config["batching"], "model_process": True}}, directory)
    together = ServerProcess({**config, "batching": {**config["batching"], "model_process": False}}, directory)
    yield apart, together
    apart.stop()
    together.stop()


def test_health_names_the_model_process(servers):
    apart, together = servers
    health = httpx.get(apart.url + "/health").json()
    assert isinstance(health["model_process"], int) and health["model_process"] != health["pid"]
    assert _alive(health["model_process"])
    assert health["documents"] == 6 and health["reranker"]
    assert "model_process" not in httpx.get(together.url + "/health").json()


@pytest.mark.parametrize("rerank", ["false", "true"])
def test_search_answers_as_the_model_in_the_server_does(servers, rerank):
    apart, together = servers
    for query in QUERIES:
        params = {"q": query, "k": 4, "rerank": rerank}
        got, expected = (httpx.get(s.url + "/search", params=params).json()["hits"] for s in (apart, together))
        assert [(h["doc_id"], h["rank"], h["title"], h["text"]) for h in got] == [
            (h["doc_id"], h["rank"], h["title"], h["text"]) for h in expected]
        assert [h["score"] for h in got] == pytest.approx([h["score"] for h in expected], abs=1e-5)
    body = {"queries": QUERIES, "k": 3}
    got, expected = (httpx.post(s.url + "/search", json=body).json()["results"] for s in (apart, together))
    assert [[h["doc_id"] for h in r["hits"]] for r in got] == [[h["doc_id"] for h in r["hits"]] for r in expected]


def test_health_times_the_model_process_batches(servers):
    apart, _ = servers
    for query in QUERIES:
        assert httpx.get(apart.url + "/search", params={"q": query, "k": 2}).status_code == 200
    recent = httpx.get(apart.url + "/health").json()["batching"]["recent"]
    assert recent["batches"] >= 1 and recent["mean_size"] >= 1
    # began/ended come from the model process's clock: a batch cannot start before it was handed over
    assert 0 <= recent["start_ms"]["p50"] <= recent["start_ms"]["max"] < 5_000
    assert 0 <= recent["process_ms"]["p50"] <= recent["process_ms"]["max"] < 5_000


def test_a_cancelled_call_does_not_leave_its_answer_for_the_next(tiny_collection):
    config = ServeConfig.from_dict({**serve_config(tiny_collection), "batching": {"model_process": True}})
    first, second = [SearchRequest(QUERIES[0], 3, False)], [SearchRequest(QUERIES[2], 3, False)]
    direct = SearchService(config, texts=False)
    expected = direct.rank(second)
    direct.close()
    service = ModelProcessService(config)

    async def cancel_then_call(settle_s: float):
        await service.rank(first)  # connected: the next call sends at once
        leaving = asyncio.ensure_future(service.rank(first))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        leaving.cancel()  # its message is sent: its answer is still to come on the socket
        with pytest.raises(asyncio.CancelledError):
            await leaving
        await asyncio.sleep(settle_s)  # 0: the next call is sent before that answer comes; 0.3: after
        return (await service.rank(second)).results

    async def both() -> list:
        return [await cancel_then_call(settle_s) for settle_s in (0.0, 0.3)]

    try:
        answers = asyncio.run(both())
    finally:
        service.close()
    for got in answers:
        assert [[doc_id for doc_id, _ in ranking] for ranking in got] == [[doc_id for doc_id, _ in ranking] for ranking in expected]
        assert [score for _, score in got[0]] == pytest.approx([score for _, score in expected[0]], abs=1e-5)


def test_rerank_and_encode_answer_as_the_model_in_the_server_does(servers):
    apart, together = servers
    documents = [{"doc_id": "a", "text": "berlin is the capital of germany"}, {"text": "the moon causes the ocean tide"}]
    for path, body, key in (("/rerank", {"query": QUERIES[1], "documents": documents}, "scores"),
                            ("/encode", {"texts": ["berlin", "tides"], "side": "doc"}, "vectors")):
        got, expected = (httpx.post(s.url + path, json=body).json() for s in (apart, together))
        assert np.allclose(got[key], expected[key], atol=1e-5)
    bad = httpx.post(apart.url + "/search", json={"queries": ["tide"], "k": 99})
    assert bad.status_code == 422 and "k" in bad.json()["error"]


def test_a_model_process_killed_during_a_batch_fails_it_with_503_and_a_new_one_answers_the_next(servers):
    apart, _ = servers
    before = httpx.get(apart.url + "/health").json()["model_process"]
    os.kill(before, signal.SIGSTOP)  # the batch is sent but not answered: it is in flight when the process dies
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx.get, apart.url + "/search", params={"q": QUERIES[0], "k": 2}, timeout=120)
        time.sleep(0.5)
        os.kill(before, signal.SIGKILL)
        failed = in_flight.result()
    assert failed.status_code == 503 and "model process" in failed.json()["error"]
    answered = httpx.get(apart.url + "/search", params={"q": QUERIES[0], "k": 2}, timeout=120)
    assert answered.status_code == 200 and len(answered.json()["hits"]) == 2
    after = httpx.get(apart.url + "/health").json()["model_process"]
    assert after != before and _alive(after)


def test_a_request_after_the_model_process_died_waits_for_a_new_one(servers):
    apart, _ = servers
    before = httpx.get(apart.url + "/health").json()["model_process"]
    os.kill(before, signal.SIGKILL)
    while _alive(before):
        time.sleep(0.05)
    answered = httpx.get(apart.url + "/search", params={"q": QUERIES[1], "k": 3}, timeout=120)
    assert answered.status_code == 200 and len(answered.json()["hits"]) == 3
    after = httpx.get(apart.url + "/health").json()["model_process"]
    assert after != before and _alive(after)


def test_sigterm_stops_the_model_process_too(tiny_collection, tmp_path):
    config = serve_config(tiny_collection)
    process = ServerProcess({**config, "batching": {**config["batching"], "model_process": True}}, tmp_path)
    child = httpx.get(process.url + "/health").json()["model_process"]
    assert httpx.get(process.url + "/search", params={"q": QUERIES[2], "k": 1}).status_code == 200
    assert process.stop(signal.SIGTERM) == 0, process.output()
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_a_model_process_that_cannot_load_stops_the_server_with_one_line(tiny_collection, tmp_path):
    config = serve_config(tiny_collection, model=str(tmp_path / "no-such-model"), port=free_port())
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({**config, "batching": {**config["batching"], "model_process": True}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "boltir.cli", "serve", "--config", str(path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "no-such-model" in done.stderr and "Traceback" not in done.stderr, done.stderr
