"""ServeConfig: a bad option is one ConfigError naming it; the shipped serve config parses."""

from __future__ import annotations

import pytest

from boltir import ConfigError
from boltir.serve import ServeConfig

BASE = {"index_dir": "indexes/x", "corpus": "data/x"}
BAD = [
    ({"workers": 0}, "serve option workers must be at least 1."),
    ({"batching": {"max_wait_ms": -1}}, "serve option batching.max_wait_ms must not be negative."),
    ({"batching": {"model_thread": "no"}}, "serve option batching.model_thread must be true or false."),
    ({"batching": {"max_batch_sise": 8}}, "unknown option(s) ['max_batch_sise']"),
    ({"limits": {"max_k": 0}}, "serve option limits.max_k must be at least 1."),
]


@pytest.mark.parametrize(("options", "message"), BAD, ids=[m.split(" must")[0] for _, m in BAD])
def test_a_bad_option_is_named(options, message):
    with pytest.raises(ConfigError) as raised:
        ServeConfig.from_dict({**BASE, **options}, "serve.yaml")
    assert message in str(raised.value)


def test_batching_defaults_and_model_thread_off():
    assert ServeConfig.from_dict(BASE).batching.model_thread is True
    config = ServeConfig.from_dict({**BASE, "batching": {"model_thread": False, "max_batch_size": 8}})
    assert (config.batching.model_thread, config.batching.max_batch_size, config.batching.max_wait_ms) == (False, 8, 2.0)
