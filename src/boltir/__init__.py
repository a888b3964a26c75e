"""boltir: fine-tune and run transformer-based retrieval models — bi-encoders and cross-encoders, one API."""

from .callbacks import IndexCallback, ReRankCallback, SearchCallback
from .data import DataModule, DocDataset, QueryDataset, Run, RunDataset, fuse_runs, read_qrels
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
from .models import BiEncoderConfig, BiEncoderModel, LightRetrieverConfig, LightRetrieverModel, load_model
from .modules import BiEncoderModule, LightRetrieverModule
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
    "LightRetrieverConfig",
    "LightRetrieverModel",
    "LightRetrieverModule",
    "MissingDependencyError",
    "ModelNotFoundError",
    "QueryDataset",
    "ReRankCallback",
    "Run",
    "RunDataset",
    "SearchCallback",
    "TorchIndexConfig",
    "Trainer",
    "UnknownIdError",
    "evaluate",
    "format_table",
    "fuse_runs",
    "load_model",
    "open_searcher",
    "read_qrels",
]
