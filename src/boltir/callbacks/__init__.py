"""Index, search, re-rank and validation as callbacks over Lightning's loops; checkpointing."""

from .checkpoint import ModelDirCheckpoint, RandomState
from .index import IndexCallback
from .re_rank import ReRankCallback
from .run_writer import RunWriter
from .search import SearchCallback
from .validation import RankingValidation

__all__ = ["IndexCallback", "ModelDirCheckpoint", "RandomState", "RankingValidation", "ReRankCallback", "RunWriter", "SearchCallback"]
