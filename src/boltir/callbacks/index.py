"""Indexing over Lightning's predict loop: document vectors stream from the model into an engine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from ..errors import ConfigError
from ..index import FaissIndexConfig, IndexConfig, Indexer
from ..types import EncodeOutput, SegmentedVectors, TokenVectors, cat_batches


class IndexCallback(pl.Callback):
    """Adds every document batch's vectors to an index and writes it atomically when the loop ends.

    Under DDP each process (GPU) encodes its own share of the corpus (DocDataset shards by rank); the other
    ranks write their vectors as shard files beside the index and rank 0, once all are done, adds them to the
    one index it writes. The shard files need a file system all ranks see (one machine, or a shared disk).

    Args:
        index_dir: where the index directory goes (replaced only once the new one is complete).
        index_config: the engine and its settings; Faiss flat (exact) by default.
        buffer_size: vectors held on the model's device before they go to the engine together; moving them
            waits for the device, so moving them in few large steps lets it run ahead of the host.
    """

    def __init__(
        self, index_dir: str | os.PathLike[str], index_config: IndexConfig | None = None, buffer_size: int = 32_768
    ) -> None:
        super().__init__()
        self.index_dir = Path(index_dir)
        self.index_config = index_config or FaissIndexConfig()
        self.buffer_size = buffer_size
        self.indexer: Indexer | None = None
        self._ids: list[str] = []
        self._vectors: list[Any] = []
        self._rank, self._shards_written = 0, 0

    @property
    def shard_dir(self) -> Path:
        """Where ranks other than 0 leave their vectors for rank 0 (removed once the index is written)."""
        return self.index_dir.parent / f".{self.index_dir.name}.shards"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ids, self._vectors = [], []
        self._rank, self._shards_written = trainer.global_rank, 0
        if trainer.world_size > 1:
            if trainer.is_global_zero:
                shutil.rmtree(self.shard_dir, ignore_errors=True)
                self.shard_dir.mkdir(parents=True)
            trainer.strategy.barrier("boltir-index-start")
        self.indexer = self.index_config.indexer(self.index_dir, pl_module.model) if trainer.is_global_zero else None

    def _flush(self) -> None:
        if not self._ids:
            return
        vectors = _concat(self._vectors)
        if self.indexer is not None:
            self.indexer.add(self._ids, vectors)
        else:
            stem = self.shard_dir / f"rank{self._rank:05d}-{self._shards_written:06d}"
            if isinstance(vectors, TokenVectors):  # padded rows of token / segment vectors: keep which ones count
                np.save(f"{stem}.{type(vectors).__name__}.npy", vectors.mask.cpu().numpy())
                vectors = vectors.vectors
            np.save(f"{stem}.npy", vectors.detach().float().cpu().numpy())
            Path(f"{stem}.ids").write_text("".join(doc_id + "\n" for doc_id in self._ids), encoding="utf-8")
            self._shards_written += 1
        self._ids, self._vectors = [], []

    def _add_shards(self) -> None:
        """Rank 0: the other ranks' vectors, in rank order, into the index."""
        assert self.indexer is not None
        for vectors_file in sorted(self.shard_dir.glob("rank*[0-9].npy")):
            ids = vectors_file.with_suffix(".ids").read_text(encoding="utf-8").splitlines()
            vectors = torch.from_numpy(np.load(vectors_file))
            for kind in (TokenVectors, SegmentedVectors):
                mask_file = vectors_file.with_suffix(f".{kind.__name__}.npy")
                if mask_file.is_file():
                    vectors = kind(vectors, torch.from_numpy(np.load(mask_file)))
            self.indexer.add(ids, vectors)
        shutil.rmtree(self.shard_dir, ignore_errors=True)

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, EncodeOutput) or outputs.kind != "doc":
            raise ConfigError("index needs document datasets (DocDataset) in data.inference_datasets.")
        self._ids.extend(outputs.ids)
        self._vectors.append(outputs.embeddings)
        if len(self._ids) >= self.buffer_size:
            self._flush()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()
        if trainer.world_size > 1:
            trainer.strategy.barrier("boltir-index-shards")  # every rank's shards are on disk
        if self.indexer is not None:
            if trainer.world_size > 1:
                self._add_shards()
            path = self.indexer.finish()
            vectors = f" ({self.indexer.count} segment vectors)" if self.indexer.segmented else ""
            print(f"indexed {self.indexer.documents} documents{vectors} into {path}", flush=True)
        if trainer.world_size > 1:
            trainer.strategy.barrier("boltir-index-done")  # no rank returns before the index exists

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._ids, self._vectors = [], []
        if self.indexer is not None:
            self.indexer.abort()
            shutil.rmtree(self.shard_dir, ignore_errors=True)


def _concat(parts: list[Any]) -> Any:
    """Join buffered batches of any representation: tensors, token/segment vectors, or texts (lexical engines)."""
    if isinstance(parts[0], list):
        return [text for part in parts for text in part]
    return cat_batches(parts)
