"""The index / search / re-rank bar counts documents / queries / pairs, and moves within a batch."""

from __future__ import annotations

import pytest

from boltir import (
    BiEncoderModule,
    CrossEncoderModule,
    DataModule,
    DocDataset,
    QueryDataset,
    RunDataset,
    TorchIndexConfig,
    Trainer,
)
from boltir.callbacks.progress import ProgressBar, _Completed


class RecordingBar(ProgressBar):
    """The bar's task (unit, completed, total) after every forward pass the module reported."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int, float]] = []

    def _advance(self, count: int) -> None:
        super()._advance(count)
        task = self._predict_task()
        self.seen.append((task.fields["unit"], int(task.completed), task.total))


def _trainer(bar: RecordingBar) -> Trainer:
    return Trainer(accelerator="cpu", logger=False, callbacks=[bar])


def test_re_rank_counts_pairs_and_moves_within_one_batch(tiny_bert_dir, tiny_train_beir, tmp_path):
    run = RunDataset(tiny_train_beir / "first-stage.run", tiny_train_beir, tiny_train_beir, split="train")
    pairs = sum(len(sample.doc_ids) for sample in run.samples)
    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=2)
    bar = RecordingBar()
    _trainer(bar).re_rank(module, DataModule(inference_datasets=[run], inference_batch_size=len(run)), run_dir=tmp_path)
    assert pairs == 18 and {(unit, total) for unit, _, total in bar.seen} == {("pairs", pairs)}
    done = [completed for _, completed, _ in bar.seen]
    assert done == sorted(done) and done[-1] == pairs
    assert len(done) >= pairs // 2  # one step per forward pass of 2 pairs, though the queries are one batch
    task = bar._predict_task()
    assert _Completed(style="").render(task).plain == "18/18 pairs"
    assert module.on_items_done is None  # the bar lets go of the module after the run


def test_index_counts_documents_and_search_counts_queries(tiny_bert_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    bar = RecordingBar()
    _trainer(bar).index(module, DataModule(DocDataset(tiny_beir), inference_batch_size=4), tmp_path / "index", TorchIndexConfig())
    assert {(unit, total) for unit, _, total in bar.seen} == {("documents", 6)}
    assert [completed for _, completed, _ in bar.seen][-1] == 6
    bar = RecordingBar()
    _trainer(bar).search(module, DataModule(QueryDataset(tiny_beir), inference_batch_size=2), tmp_path / "index",
                         k=3, run_dir=tmp_path / "runs")
    assert {(unit, total) for unit, _, total in bar.seen} == {("queries", 3)}
    assert [completed for _, completed, _ in bar.seen] == [2, 3]


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_process_counts_its_share(tiny_beir, world_size):
    from boltir.callbacks.progress import work_of

    assert work_of(DocDataset(tiny_beir), world_size) == ("documents", "Encoding documents", 6 // world_size)
    assert work_of(QueryDataset(tiny_beir), world_size)[2] == -(-3 // world_size)
