"""What ``boltir serve`` reads from its YAML file: model, index, corpus, re-ranker, batching and request limits."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from .._config_files import DATA, MODEL, PATH, read_config
from ..errors import ConfigError

_PATH_OPTIONS = {"index_dir": PATH, "corpus": DATA, "model": MODEL, "reranker": MODEL}  # may be relative


@dataclasses.dataclass
class BatchingConfig:
    """Dynamic batching: queries arriving within ``max_wait_ms`` of the first one waiting share one forward pass
    and one search call, at most ``max_batch_size`` of them. ``max_batch_size: 1`` serves one query at a time.

    ``model_thread``: batches run in a thread of their own, so the event loop goes on reading requests meanwhile
    (the default). ``false`` runs each batch on the event loop itself, which stops reading while it runs: with
    a GPU a batch takes a few milliseconds, and no thread then waits for the GIL, which torch lets go of around
    every operation (beside a busy event loop, each handback can wait out Python's 5 ms switch interval).

    ``model_process``: the model, index and re-ranker live in a process of their own, which the server's event
    loop hands each batch to over a Unix socket; the server keeps the corpus and makes the hits. The two then have
    a GIL each: the model's hundreds of torch operations a batch no longer wait on the event loop's, nor it on
    theirs. Unset (the default): on when the device is a GPU. A model process that dies fails the batch it was
    answering (503); the next batch waits for a new one.
    """

    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    model_thread: bool = True
    model_process: bool | None = None


@dataclasses.dataclass
class LimitsConfig:
    """What one request may ask for; anything beyond is answered 4xx, never passed to the model."""

    max_query_chars: int = 1000
    max_k: int = 100
    max_queries: int = 64  # queries of one POST /search, texts of one /encode, documents of one /rerank
    max_body_bytes: int = 1_000_000
    snippet_chars: int = 300  # text of each hit, cut around the first query term


@dataclasses.dataclass
class ServeConfig:
    """Settings of one search service.

    Args:
        index_dir: an index built by ``boltir index``.
        corpus: the collection it was built from (BEIR folder or ``corpus.jsonl``): titles and texts of hits.
        model: the first-stage model; by default the one the index manifest names.
        reranker: a cross-encoder re-ranking the first stage's top ``rerank_depth`` when a request asks.
        device: ``auto`` (a GPU when there is one), ``cpu`` or ``cuda``; precision ``fp32``, ``bf16`` or ``fp16``.
        threads: torch's and Faiss's CPU threads (default: one per core, or with several ``workers`` the cores
            shared out among them); 1 on a machine shared with other jobs, where threads waiting on busy cores
            slow every forward pass down many times.
        host, port: where to listen; loopback unless ``host`` says otherwise.
        workers: server processes on the port, each on its own SO_REUSEPORT socket. Each loads its own model,
            index and corpus and batches its own connections: one Python process tops out where its event loop
            and GIL do (1,300-1,750 queries/s for MiniLM on an H100), several scale past that on the same GPU,
            at the memory of one service each.
    """

    index_dir: str
    corpus: str
    model: str | None = None
    reranker: str | None = None
    rerank_depth: int = 100
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    batching: BatchingConfig = dataclasses.field(default_factory=BatchingConfig)
    limits: LimitsConfig = dataclasses.field(default_factory=LimitsConfig)

    def __post_init__(self) -> None:
        checks = [
            ("rerank_depth", self.rerank_depth >= 1, "must be at least 1"),
            ("precision", self.precision in ("fp32", "bf16", "fp16"), "must be fp32, bf16 or fp16"),
            ("device", self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"), "must be auto, cpu or cuda[:N]"),
            ("threads", self.threads is None or self.threads >= 1, "must be at least 1 (or unset)"),
            ("port", 0 <= self.port <= 65535, "must be a TCP port (0-65535)"),
            ("workers", self.workers >= 1, "must be at least 1"),
            ("batching.max_batch_size", self.batching.max_batch_size >= 1, "must be at least 1"),
            ("batching.max_wait_ms", self.batching.max_wait_ms >= 0, "must not be negative"),
            ("batching.model_thread", isinstance(self.batching.model_thread, bool), "must be true or false"),
            ("batching.model_process", self.batching.model_process is None or isinstance(self.batching.model_process, bool),
             "must be true, false or unset"),
        ]
        checks += [(f"limits.{f.name}", getattr(self.limits, f.name) >= 1, "must be at least 1") for f in dataclasses.fields(LimitsConfig)]
        for option, ok, rule in checks:
            if not ok:
                raise ConfigError(f"serve option {option} {rule}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "serve config") -> ServeConfig:
        """Build from a parsed YAML mapping; an unknown or missing option names the file and the option."""
        values = dict(values)
        for name, section in (("batching", BatchingConfig), ("limits", LimitsConfig)):
            if name in values:
                values[name] = _build(section, values[name], f"{source}: {name}")
        return _build(cls, values, source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ServeConfig:
        """Read a config file; a relative path in it is relative to the file's folder (as in every config file:
        see :mod:`boltir._config_files`); hub names stay names."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: serve config not found.")
        values, config = read_config(path)
        values = values or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of serve options.")
        for name, kind in _PATH_OPTIONS.items():
            if isinstance(values.get(name), str):
                values[name] = config.resolve(values[name], kind, (name,))
        return cls.from_dict(values, str(path))


def _build(cls: type, values: Any, source: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of {cls.__name__} options, got {values!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown option(s) {unknown}; valid options are {sorted(fields)}.")
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise ConfigError(f"{source}: missing option(s) {missing}.")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}.") from None
