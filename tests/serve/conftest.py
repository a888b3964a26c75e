"""Fixtures: a small index and a real ``boltir serve`` process on a free port (talked to over HTTP)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from boltir import BiEncoderModule, DataModule, DocDataset, Trainer

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_index(model_dir: str | Path, corpus: Path, index_dir: Path) -> Path:
    module = BiEncoderModule(str(model_dir))
    Trainer(logger=False, accelerator="cpu", enable_progress_bar=False).index(module, DataModule(DocDataset(corpus)), index_dir)
    return index_dir


class ServerProcess:
    """``python -m boltir.cli.serve`` running in a child process, and its log."""

    def __init__(self, config: dict, directory: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = directory / f"serve-{self.port}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log_path = directory / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "boltir.cli.serve", "--config", str(path), "--port", str(self.port), *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"boltir serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"boltir serve did not answer /health within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def tiny_collection(tmp_path_factory, tiny_bert_dir) -> dict:
    """A 6-document BEIR folder (as conftest's tiny_beir) indexed with the tiny random BERT."""
    root = tmp_path_factory.mktemp("serve-beir")
    docs = [
        ("d1", "Berlin", "berlin is the capital of germany"),
        ("d2", "Paris", "paris is the capital of france"),
        ("d3", "Tides", "the moon causes the ocean tide"),
        ("d4", "", "genes in cells increase cancer risk"),
        ("d5", "Brain", "drug treatment of the brain in mice"),
        ("d6", "Search", "neural ranking models learn to rank documents"),
    ]
    with open(root / "corpus.jsonl", "w") as handle:
        for doc_id, title, text in docs:
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    index_dir = build_index(tiny_bert_dir, root / "corpus.jsonl", root / "index")
    return {"root": root, "index_dir": index_dir, "model": tiny_bert_dir, "docs": docs}


def serve_config(collection: dict, **overrides) -> dict:
    config = {"index_dir": str(collection["index_dir"]), "corpus": str(collection["root"]), "model": str(collection["model"]),
              "device": "cpu", "limits": {"max_k": 5, "max_query_chars": 200, "max_body_bytes": 4096, "snippet_chars": 40, "max_queries": 8},
              "batching": {"max_batch_size": 16, "max_wait_ms": 5}}
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def server(tiny_collection, tmp_path_factory) -> Iterator[ServerProcess]:
    process = ServerProcess(serve_config(tiny_collection), tmp_path_factory.mktemp("serve"))
    yield process
    process.stop()
