from .config import CrossEncoderConfig
from .model import CrossEncoderModel, PairBatch

__all__ = ["CrossEncoderConfig", "CrossEncoderModel", "PairBatch"]
