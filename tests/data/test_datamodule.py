"""DataModule options: batch sizes that cannot work are refused when the config is read (#16 item 11)."""

from __future__ import annotations

import pytest

from boltir import BiEncoderModule, ConfigError, DataFormatError, DataModule, DocDataset
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


def test_corpus_ids_are_checked_when_the_loader_is_made_before_any_worker(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: document id 'a' repeats the one at .*corpus.jsonl:1"):
        DataModule(DocDataset(corpus), num_workers=2).predict_dataloader()
    dataset = DocDataset(corpus, duplicate_ids="first")
    DataModule(dataset, num_workers=2, sort_window=1).predict_dataloader()
    assert dataset._dropped == {2}  # done in this process: the workers inherit it instead of reading the corpus again
