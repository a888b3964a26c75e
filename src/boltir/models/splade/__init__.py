from .config import SpladeConfig
from .model import SpladeModel

__all__ = ["SpladeConfig", "SpladeModel"]
