"""The exception types a user of boltir can meet.

Every error a user can cause (bad files, unknown ids or options, mismatched indexes, missing packages)
is raised as one of these, with a message that names the file and line or the option to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class BoltirError(Exception):
    """Base class of every error boltir raises on purpose."""


class ConfigError(BoltirError, ValueError):
    """A configuration option does not exist or has a value that cannot work."""


class DataFormatError(BoltirError, ValueError):
    """An input file is missing or malformed; the message names the file and line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class UnknownIdError(BoltirError, KeyError):
    """A run, qrels or tuple file names a query or document id the collection does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IndexMismatchError(BoltirError, ValueError):
    """An index is incomplete, or was built by a model that does not match the one searching it."""


class IndexLockedError(BoltirError, OSError):
    """Another process is building the same index directory; the message names its pid."""


class WriteError(BoltirError, OSError):
    """A file could not be written (full disk, no permission); the message names it and what was kept."""


class ModelNotFoundError(BoltirError, OSError):
    """A model name or path could not be resolved to weights on this machine."""


class HubError(BoltirError, OSError):
    """The Hugging Face Hub could not be reached, or refused a request (offline mode, no network, bad token)."""


class DamagedFileError(BoltirError, OSError):
    """A file (model weights, an index file) is truncated, garbled, or differs from the SHA-256 recorded for it."""


class MissingDependencyError(BoltirError, ImportError):
    """An optional package that a feature needs is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        hint = f"pip install 'boltir[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed: run `{hint}`.")
        self.package = package


def check_positive(option: str, value: Any) -> int:
    """``value`` if it is an integer of at least 1, else :class:`ConfigError` naming ``option`` (batch sizes:
    0 would loop forever or feed empty batches, and a negative one silently slices from the end)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option} must be an integer of at least 1, got {value!r}.")
    return value


def require(module: str, package: str, feature: str, extra: str | None = None):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, feature, extra) from exc
