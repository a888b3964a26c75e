"""Checkpoints saved by other projects, recognised by their files and read into boltir options and weights.

A model family's ``from_pretrained`` (and :func:`boltir.models.load_model`) asks :func:`detect_layout` about a
directory without ``boltir_config.json``; each reader says whether the directory is in its layout and, if so,
which family loads it, with which options and head weights. A new layout adds its reader and one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import ForeignCheckpoint, checkpoint_tensors, read_json
from .colbert import read_pylate, read_stanford_colbert

# layout name -> its reader; a reader returns None for a directory not in its layout (sorted by name)
LAYOUTS: dict[str, Callable[[Path], ForeignCheckpoint | None]] = {
    "pylate": read_pylate,
    "stanford-colbert": read_stanford_colbert,
}


def detect_layout(directory: str | Path) -> ForeignCheckpoint | None:
    """The first layout whose reader recognises ``directory``, read; None for boltir's own and plain HF directories."""
    for read in LAYOUTS.values():
        found = read(Path(directory))
        if found is not None:
            return found
    return None


__all__ = ["LAYOUTS", "ForeignCheckpoint", "checkpoint_tensors", "detect_layout", "read_json"]
