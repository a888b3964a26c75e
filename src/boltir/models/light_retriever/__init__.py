from .config import LightRetrieverConfig
from .model import LightRetrieverModel

__all__ = ["LightRetrieverConfig", "LightRetrieverModel"]
