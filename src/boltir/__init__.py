"""boltir: fine-tune and run transformer-based retrieval models — bi-encoders and cross-encoders, one API.

Names load on first use (PEP 562): ``import boltir`` and the ``boltir`` command start in a blink, and torch,
transformers and Lightning are imported only by what needs them. Add a public name to ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

# submodule -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".callbacks": ("IndexCallback", "ModelDirCheckpoint", "ReRankCallback", "SearchCallback"),
    ".data": (
        "DataModule",
        "DocDataset",
        "MixedTupleDataset",
        "QueryDataset",
        "Run",
        "RunDataset",
        "RunTupleDataset",
        "TupleDataset",
        "fuse_runs",
        "read_qrels",
    ),
    ".errors": (
        "BoltirError",
        "ConfigError",
        "DamagedFileError",
        "DataFormatError",
        "IndexLockedError",
        "IndexMismatchError",
        "MissingDependencyError",
        "ModelNotFoundError",
        "UnknownIdError",
        "WriteError",
    ),
    ".eval": ("evaluate", "format_table"),
    ".index": (
        "BM25IndexConfig",
        "FaissIndexConfig",
        "MultiVectorExactIndexConfig",
        "PlaidIndexConfig",
        "SeismicIndexConfig",
        "SparseExactIndexConfig",
        "TorchIndexConfig",
        "open_searcher",
        "verify_index",
    ),
    ".models": (
        "BiEncoderConfig",
        "BiEncoderModel",
        "ColBERTConfig",
        "CrossEncoderConfig",
        "CrossEncoderModel",
        "LightRetrieverConfig",
        "LightRetrieverModel",
        "SpladeConfig",
        "load_model",
    ),
    ".models.layers": ("SegmentConfig",),
    ".modules": (
        "BiEncoderModule",
        "BM25Module",
        "ColBERTModule",
        "CrossEncoderModule",
        "LightRetrieverModule",
        "LinearWarmupDecay",
        "SpladeModule",
    ),
    ".trainer": ("Trainer",),
    ".types": ("SegmentedVectors",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'boltir' has no attribute '{name}'")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
