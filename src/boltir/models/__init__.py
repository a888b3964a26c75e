"""Model families: each a config (saved beside the weights) plus a model."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from .foreign import lightning_ir
from .bi_encoder import BiEncoderConfig, BiEncoderModel
from .colbert import ColBERTConfig, ColBERTModel
from .config import BoltirConfig, read_family
from .cross_encoder import CrossEncoderConfig, CrossEncoderModel
from .foreign import detect_layout
from .light_retriever import LightRetrieverConfig, LightRetrieverModel
from .model import BoltirModel
from .resolve import resolve_model_dir
from .splade import SpladeConfig, SpladeModel

# The families a saved directory (or a config's ``family``) can name; a new family adds its row here, and the
# modules pick the model class from it.
MODEL_FAMILIES: dict[str, type[BoltirModel]] = {
    BiEncoderConfig.family: BiEncoderModel,
    SpladeConfig.family: SpladeModel,
    ColBERTConfig.family: ColBERTModel,
    CrossEncoderConfig.family: CrossEncoderModel,
    LightRetrieverConfig.family: LightRetrieverModel,
}


def load_model(
    name_or_path: str | os.PathLike[str], default: type[BoltirModel] | None = None, *, verify: bool = False, **overrides: Any
) -> BoltirModel:
    """Load any saved boltir model by the family its directory names, a Lightning IR model directory, or a
    checkpoint of another project by its layout (Stanford ColBERT, PyLate: see :mod:`boltir.models.foreign`); plain
    HF directories need ``default``. ``verify=True`` checks the weights against the SHA-256 boltir recorded when
    it saved them (see :meth:`BoltirModel.from_pretrained`)."""
    directory = resolve_model_dir(name_or_path)
    family = read_family(directory) or lightning_ir.family(directory)
    if family is None:
        found = detect_layout(directory)
        family = found.family if found is not None else None
    if family is None:
        if default is None:
            raise ConfigError(f"{directory} is not a saved boltir model: load it with a family's class instead.")
        return default.from_pretrained(name_or_path, verify=verify, **overrides)
    if family not in MODEL_FAMILIES:
        raise ConfigError(f"{directory} names the unknown model family '{family}'; known: {sorted(MODEL_FAMILIES)}.")
    return MODEL_FAMILIES[family].from_pretrained(name_or_path, verify=verify, **overrides)


__all__ = [
    "MODEL_FAMILIES",
    "BiEncoderConfig",
    "BiEncoderModel",
    "BoltirConfig",
    "BoltirModel",
    "ColBERTConfig",
    "ColBERTModel",
    "SpladeConfig",
    "SpladeModel",
    "CrossEncoderConfig",
    "CrossEncoderModel",
    "LightRetrieverConfig",
    "LightRetrieverModel",
    "load_model",
    "read_family",
    "resolve_model_dir",
]
