"""Indexing over Lightning's predict loop: every process streams its vectors to shards, then one index is built.

Under DDP each process (GPU, node) encodes its own share of the corpus (DocDataset shards by rank) and writes
it as shards into one shard directory beside the index (a path all processes see: one machine or a shared
disk); no process gathers another's vectors in memory. Once every rank's shards are complete, rank 0 builds
the index from them shard by shard (see :meth:`boltir.index.Indexer.add_shards`; Faiss's ``sharded`` and
``on_disk`` options keep only codes in memory) and the shards are removed. A run that dies keeps its complete
shards: run it again with ``resume`` and it encodes only the documents they do not hold.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..data import DocDataset, DocIdSet
from ..errors import ConfigError
from ..index import FaissIndexConfig, IndexConfig
from ..index.shards import ShardWriter, complete_shards, shard_doc_ids
from ..index.storage import IndexBuild
from ..types import EncodeOutput


class IndexCallback(pl.Callback):
    """Writes every document batch's vectors to shards and, when the loop ends, builds the index from them.

    Args:
        index_dir: where the index directory goes (replaced only once the new one is complete).
        index_config: the engine and its settings; Faiss flat (exact) by default.
        shard_size: documents per shard (and vectors held on the model's device before they move to the host
            together: moving them waits for the device, so few large moves let it run ahead of the host).
        resume: keep the complete shards of an earlier, interrupted run with the same ``index_dir`` and encode
            only the documents they do not hold; otherwise old shards are removed first.
        keep_shards: leave the shards in :attr:`shard_dir` once the index is written, to build other engines'
            indexes from them with :func:`build_index` without encoding the corpus again.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike[str],
        index_config: IndexConfig | None = None,
        shard_size: int = 65_536,
        resume: bool = False,
        keep_shards: bool = False,
    ) -> None:
        super().__init__()
        if shard_size < 1:
            raise ConfigError(f"shard_size={shard_size} must be at least 1.")
        self.index_dir = Path(index_dir)
        self.index_config = index_config or FaissIndexConfig()
        self.shard_size = shard_size
        self.resume = resume
        self.keep_shards = keep_shards
        self.writer: ShardWriter | None = None
        self.reservation: IndexBuild | None = None  # rank 0 holds index_dir's lock while the corpus is encoded
        self.resumed_documents = 0  # documents found in complete shards when a resumed run started

    @property
    def shard_dir(self) -> Path:
        """Where every rank writes its shards (removed once the index is written)."""
        return self.index_dir.parent / f".{self.index_dir.name}.shards"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Before the DataLoaders start: clear old shards, or (resume) tell the datasets which documents to skip."""
        if not self.resume:
            if trainer.is_global_zero:
                shutil.rmtree(self.shard_dir, ignore_errors=True)
            trainer.strategy.barrier("boltir-index-clear")
            return
        done = DocIdSet(shard_doc_ids(complete_shards(self.shard_dir)))
        self.resumed_documents = len(done)
        datamodule = getattr(trainer, "datamodule", None)
        for dataset in getattr(datamodule, "inference_datasets", []):
            if isinstance(dataset, DocDataset):
                dataset.skip_ids = done if len(done) else None
        if trainer.is_global_zero and len(done):
            print(f"resuming: {len(done)} documents are already in {self.shard_dir}", flush=True)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:  # an unwritable index_dir or a second writer fails now, before any encoding
            self.reservation = IndexBuild(self.index_dir).start()
        representation = getattr(pl_module.model, "representation", "dense")
        self.writer = ShardWriter(self.shard_dir, trainer.global_rank, self.shard_size, representation)

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "doc":
            raise ConfigError("index needs document datasets (DocDataset) in data.inference_datasets.")
        assert self.writer is not None
        self.writer.add(outputs.ids, outputs.embeddings)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.writer is not None
        self.writer.close()
        trainer.strategy.barrier("boltir-index-shards")  # every rank's shards are on disk
        if trainer.is_global_zero:
            self._release()  # the indexer takes the lock again at once (a rival meanwhile fails there, not here)
            build_index(self.shard_dir, self.index_dir, self.index_config, pl_module.model)
            if not self.keep_shards:
                shutil.rmtree(self.shard_dir, ignore_errors=True)
        trainer.strategy.barrier("boltir-index-done")  # no rank returns before the index exists

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.writer is not None:
            self.writer.abort()  # complete shards stay: `resume` goes on from them
        self._release()

    def _release(self) -> None:
        if self.reservation is not None:
            self.reservation.abort()
            self.reservation = None


def build_index(shard_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], index_config: IndexConfig, model: Any) -> Path:
    """Build the index at ``index_dir`` from the complete shards in ``shard_dir``; returns its path.

    Also the way to build a second engine's index from kept shards without encoding the corpus again.
    """
    shards = complete_shards(shard_dir)
    indexer = index_config.indexer(index_dir, model)
    try:
        indexer.add_shards(shards)
    except BaseException:
        indexer.abort()
        raise
    path = indexer.finish()
    segments = f" ({indexer.count} segment vectors)" if indexer.segmented else ""
    print(f"indexed {indexer.documents} documents{segments} into {path} (from {len(shards)} shards)", flush=True)
    return path
