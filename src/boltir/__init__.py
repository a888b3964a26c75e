"""boltir: fine-tune and run transformer-based retrieval models — bi-encoders and cross-encoders, one API."""

from .callbacks import IndexCallback, ReRankCallback, SearchCallback
from .data import DataModule, DocDataset, QueryDataset, Run, RunDataset, read_qrels
from .errors import (
    BoltirError,
    ConfigError,
    DataFormatError,
    IndexMismatchError,
    MissingDependencyError,
    ModelNotFoundError,
    UnknownIdError,
)
from .eval import evaluate, format_table
from .index import FaissIndexConfig, TorchIndexConfig, open_searcher
from .models import BiEncoderConfig, BiEncoderModel, load_model
from .models.layers import SegmentConfig, SegmentedVectors
from .modules import BiEncoderModule
from .trainer import Trainer

__all__ = [
    "BiEncoderConfig",
    "BiEncoderModel",
    "BiEncoderModule",
    "BoltirError",
    "ConfigError",
    "DataFormatError",
    "DataModule",
    "DocDataset",
    "FaissIndexConfig",
    "IndexCallback",
    "IndexMismatchError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "QueryDataset",
    "ReRankCallback",
    "Run",
    "RunDataset",
    "SearchCallback",
    "SegmentConfig",
    "SegmentedVectors",
    "TorchIndexConfig",
    "Trainer",
    "UnknownIdError",
    "evaluate",
    "format_table",
    "load_model",
    "open_searcher",
    "read_qrels",
]
