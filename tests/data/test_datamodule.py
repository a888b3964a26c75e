"""DataModule options: batch sizes that cannot work are refused when the config is read (#16 item 11)."""

from __future__ import annotations

import pytest

from boltir import BiEncoderModule, ConfigError, DataModule
from boltir.index import SparseExactIndexConfig


@pytest.mark.parametrize("value", [0, -1, -64, 2.5, True, "8"])
@pytest.mark.parametrize("option", ["batch_size", "inference_batch_size"])
def test_batch_sizes_below_one_are_refused_naming_the_option(option, value):
    with pytest.raises(ConfigError, match=rf"^data\.{option} must be an integer of at least 1, got {value!r}"):
        DataModule(**{option: value})


def test_valid_batch_sizes_are_kept():
    data = DataModule(batch_size=1, inference_batch_size=3)
    assert (data.batch_size, data.inference_batch_size) == (1, 3)


@pytest.mark.parametrize("value", [0, -2])
def test_encode_and_query_batch_sizes_are_refused_before_any_model_loads(value):
    with pytest.raises(ConfigError, match=rf"^model\.encode_batch_size must be an integer of at least 1, got {value}"):
        BiEncoderModule("no/such-model-anywhere", encode_batch_size=value)
    with pytest.raises(ConfigError, match=rf"^index_config\.query_batch_size must be an integer of at least 1, got {value}"):
        SparseExactIndexConfig(query_batch_size=value)
