from .config import BiEncoderConfig
from .model import BiEncoderModel

__all__ = ["BiEncoderConfig", "BiEncoderModel"]
