"""``boltir serve``: an HTTP search service and search page over any boltir index (FastAPI on uvicorn)."""

from ..errors import require

# the service's packages are an extra: without them, one line saying what to install instead of an ImportError
for _module in ("fastapi", "uvicorn"):
    require(_module, _module, "boltir serve", extra="serve")

from .app import create_app
from .batching import DynamicBatcher
from .config import BatchingConfig, LimitsConfig, ServeConfig
from .process import ModelProcessService, open_service
from .service import Hit, SearchRequest, SearchService

__all__ = ["BatchingConfig", "DynamicBatcher", "Hit", "LimitsConfig", "ModelProcessService", "SearchRequest", "SearchService",
           "ServeConfig", "create_app", "open_service"]
