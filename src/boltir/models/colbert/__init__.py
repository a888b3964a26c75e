from .config import ColBERTConfig
from .model import ColBERTModel

__all__ = ["ColBERTConfig", "ColBERTModel"]
