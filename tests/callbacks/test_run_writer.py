"""Destinations of index and search are checked before any work; a write failing mid-way names its file and
keeps the files already complete."""

from __future__ import annotations

import json

import pytest

from boltir import BiEncoderModule, ConfigError, DataModule, DocDataset, QueryDataset, Run, Trainer, WriteError
from boltir.callbacks import RunWriter
from tests.faults import file_size_limit


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)


@pytest.fixture()
def counted(tiny_bert_dir, monkeypatch):
    """A bi-encoder that counts the batches it encodes."""
    module = BiEncoderModule(tiny_bert_dir)
    module.batches = 0
    original = module.predict_step

    def predict_step(*args, **kwargs):
        module.batches += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "predict_step", predict_step)
    return module


def test_unwritable_destinations_fail_before_any_batch_is_encoded(counted, tiny_beir, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    with pytest.raises(ConfigError, match=r"^index_dir .*/file/index cannot be written \(Not a directory\)"):
        _trainer().index(counted, DataModule(DocDataset(tiny_beir)), index_dir=tmp_path / "file" / "index")
    assert counted.batches == 0
    _trainer().index(counted, DataModule(DocDataset(tiny_beir)), index_dir=tmp_path / "index")
    counted.batches = 0
    for destination, message in [({"run_dir": tmp_path / "file" / "runs"}, r"^run_dir .*/file/runs cannot be written \(Not a directory\)"),
                                 ({"run_path": tmp_path / "file" / "test.run"}, r"^the folder of run_path .*/file is a file, not a directory")]:
        with pytest.raises(ConfigError, match=message):
            _trainer().search(counted, DataModule(QueryDataset(tiny_beir)), index_dir=tmp_path / "index", **destination)
        assert counted.batches == 0


def test_a_write_failing_mid_way_names_the_file_and_keeps_the_complete_ones(counted, tiny_beir, tmp_path, monkeypatch):
    many = tmp_path / "many"
    many.mkdir()
    (many / "queries.jsonl").write_text("".join(json.dumps({"_id": f"m{i}", "text": "capital of france"}) + "\n" for i in range(200)))
    _trainer().index(counted, DataModule(DocDataset(tiny_beir)), index_dir=tmp_path / "index")
    end = RunWriter.on_predict_end

    def on_predict_end_on_a_full_disk(self, trainer, pl_module):  # the small run fits, the large one does not
        with file_size_limit(4096):
            end(self, trainer, pl_module)

    monkeypatch.setattr(RunWriter, "on_predict_end", on_predict_end_on_a_full_disk)
    queries = DataModule([QueryDataset(tiny_beir), QueryDataset(many / "queries.jsonl")])
    with pytest.raises(WriteError) as failure:
        _trainer().search(counted, queries, index_dir=tmp_path / "index", k=6, run_dir=tmp_path / "runs")
    runs = tmp_path / "runs"
    assert str(failure.value) == (
        f"could not write {runs / 'queries.run'}: File too large; nothing was written under that name. "
        f"Complete files kept: {runs / 'tiny-beir-test.run'}, {runs / 'tiny-beir-test.metrics.json'}."
    )
    assert sorted(p.name for p in runs.iterdir()) == ["tiny-beir-test.metrics.json", "tiny-beir-test.run"]
    assert sorted(Run.from_trec(runs / "tiny-beir-test.run").query_ids) == ["q1", "q2", "q3"]
