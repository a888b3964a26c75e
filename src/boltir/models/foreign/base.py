"""What a reader of another project's checkpoint returns, and reading named tensors out of a checkpoint directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from ..._config_files import read_json_config


@dataclass(frozen=True)
class ForeignCheckpoint:
    """A directory saved by another project, read into what boltir needs to score exactly as it did there.

    Attributes:
        layout: the project's layout, e.g. ``stanford-colbert`` or ``pylate``.
        family: the boltir model family that loads it (a key of ``boltir.models.MODEL_FAMILIES``).
        options: the boltir config options its files set (lengths, markers, projection size, ...).
        head_weights: the weights outside the backbone, under the names of the boltir model's own layers.
    """

    layout: str
    family: str
    options: dict[str, Any]
    head_weights: dict[str, Tensor] = field(default_factory=dict)


def read_json(path: Path) -> Any:
    """The JSON in ``path`` (None where there is no such file), or :class:`~boltir.errors.ConfigError` naming file:line:column."""
    if not path.is_file():
        return None
    return read_json_config(path)


def checkpoint_tensors(directory: Path, names: tuple[str, ...]) -> dict[str, Tensor]:
    """The named tensors of a checkpoint directory (safetensors files, else ``pytorch_model.bin`` read as weights
    only: nothing in it is unpickled beyond tensors and plain containers)."""
    found: dict[str, Tensor] = {}
    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in names:
                if name in handle.keys():
                    found[name] = handle.get_tensor(name)
    if not found and (directory / "pytorch_model.bin").is_file():
        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        found = {n: state[n] for n in names if n in state}
    return found


__all__ = ["ForeignCheckpoint", "checkpoint_tensors", "read_json"]
