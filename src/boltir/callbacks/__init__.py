"""Index, search and re-rank as callbacks over Lightning's predict loop."""

from .checkpoint import ModelDirCheckpoint
from .index import IndexCallback
from .re_rank import ReRankCallback
from .run_writer import RunWriter
from .search import SearchCallback
from .token_cache import TokenCacheCallback

__all__ = ["IndexCallback", "ModelDirCheckpoint", "ReRankCallback", "RunWriter", "SearchCallback", "TokenCacheCallback"]
