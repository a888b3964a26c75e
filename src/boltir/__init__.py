"""boltir: fine-tune and run transformer-based retrieval models — bi-encoders and cross-encoders, one API."""

from .callbacks import IndexCallback, ModelDirCheckpoint, ReRankCallback, SearchCallback
from .data import (
    DataModule,
    DocDataset,
    MixedTupleDataset,
    QueryDataset,
    Run,
    RunDataset,
    RunTupleDataset,
    TupleDataset,
    read_qrels,
)
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
from .modules import BiEncoderModule, LinearWarmupDecay
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
    "LinearWarmupDecay",
    "MissingDependencyError",
    "MixedTupleDataset",
    "ModelDirCheckpoint",
    "ModelNotFoundError",
    "QueryDataset",
    "ReRankCallback",
    "Run",
    "RunDataset",
    "RunTupleDataset",
    "SearchCallback",
    "TorchIndexConfig",
    "Trainer",
    "TupleDataset",
    "UnknownIdError",
    "evaluate",
    "format_table",
    "load_model",
    "open_searcher",
    "read_qrels",
]
