"""Datasets, file formats, the run type and the DataModule."""

from .batches import Doc, DocBatch, Query, QueryBatch, RankBatch, RankSample, TrainBatch, TrainSample, collate
from .datamodule import DataModule
from .datasets import DocDataset, DocIdSet, QueryDataset, RunDataset, join_title
from .run import Qrels, Run, fuse_runs, read_qrels
from .tuples import MixedTupleDataset, RunTupleDataset, TupleDataset

__all__ = [
    "DataModule",
    "Doc",
    "MixedTupleDataset",
    "DocBatch",
    "DocDataset",
    "DocIdSet",
    "Qrels",
    "Query",
    "QueryBatch",
    "QueryDataset",
    "RankBatch",
    "RankSample",
    "Run",
    "RunDataset",
    "RunTupleDataset",
    "TrainBatch",
    "TrainSample",
    "TupleDataset",
    "collate",
    "fuse_runs",
    "join_title",
    "read_qrels",
]
