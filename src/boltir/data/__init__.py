"""Datasets, file formats, the run type and the DataModule."""

from .batches import Doc, DocBatch, Query, QueryBatch, RankBatch, RankSample, collate
from .datamodule import DataModule
from .datasets import DocDataset, QueryDataset, RunDataset, join_title
from .run import Qrels, Run, fuse_runs, read_qrels

__all__ = [
    "DataModule",
    "Doc",
    "DocBatch",
    "DocDataset",
    "Qrels",
    "Query",
    "QueryBatch",
    "QueryDataset",
    "RankBatch",
    "RankSample",
    "Run",
    "RunDataset",
    "collate",
    "fuse_runs",
    "join_title",
    "read_qrels",
]
