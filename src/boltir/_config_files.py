"""Reading config files the same way everywhere: decode errors in one line, paths relative to the file.

The rule (the one jsonargparse's path types, docker compose and tsconfig follow): a relative path written in a
config file is relative to that file's folder; a relative path given on the command line (or in Python) is
relative to the working directory; absolute paths and ``~`` stay as written. A value that may also be a name —
a model (``sentence-transformers/all-MiniLM-L6-v2``), a dataset source (the ir_datasets id ``beir/scifact/test``),
``ckpt_path: last`` — is read as a path when the code that consumes it would read it as one (see
:func:`names_a_path`), and passed on unchanged otherwise.

Resolved paths are remembered with the file and line they were written at, so an error about one of them can
say where it came from (:func:`config_origin`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PATH, MODEL, DATA, CHECKPOINT = "path", "model", "data", "checkpoint"
# parameters whose value may be a name instead of a path, and which rule tells them apart
NAME_OR_PATH = {"model_name_or_path": MODEL, "source": DATA, "queries": DATA, "corpus": DATA, "ckpt_path": CHECKPOINT}
_CHECKPOINT_NAMES = {"last", "best", "hpc", "registry"}  # Lightning's ckpt_path names
Key = tuple[str | int, ...]
_ORIGINS: dict[str, str] = {}  # resolved path -> "file:line: 'value as written'"


def names_a_path(value: str, kind: str, folder: Path) -> bool:
    """Whether a relative ``value`` of a ``kind`` of option is a path (else a name), judged as its consumer
    judges it: models as :func:`boltir.models.resolve.resolve_model_dir` (a folder that exists, or more than one
    ``/``: hub names have one), dataset sources as :class:`boltir.DocDataset` (exists, or has a file extension:
    ir_datasets ids have none); either way a value starting with ``./`` or ``../`` is a path."""
    if kind == PATH:
        return True
    if kind == CHECKPOINT:
        return value not in _CHECKPOINT_NAMES
    if value.startswith(("./", "../")) or value in (".", "..") or (folder / value).exists():
        return True
    return value.count("/") > 1 if kind == MODEL else Path(value).suffix != ""


def _is_relative(value: str) -> bool:
    return bool(value) and not value.startswith(("/", "~")) and "://" not in value


@dataclass
class ConfigFile:
    """A config file as read: where it is (as the user named it) and the line of every value in it."""

    path: Path
    lines: dict[Key, int] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return Path(os.path.abspath(self.path)).parent

    def where(self, key: Key) -> str:
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def resolve(self, value: str, kind: str, key: Key) -> str:
        """``value`` as a path relative to this file's folder when it is a relative path (see the module's rule)."""
        if not _is_relative(value) or not names_a_path(value, kind, self.folder):
            return value
        resolved = os.path.normpath(self.folder / value)
        _ORIGINS[resolved] = f"{self.where(key)}: '{value}'"
        return resolved


def read_config(path: str | os.PathLike[str], load: Callable[[str], Any] = yaml.safe_load) -> tuple[Any, ConfigFile]:
    """The parsed content of a YAML (or JSON) config file and its :class:`ConfigFile`; a file that does not
    parse raises :class:`ConfigError` naming ``file:line:column`` and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc}).") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = load(text)
    except yaml.MarkedYAMLError as exc:
        raise yaml_error(path, exc) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = ConfigFile(path)
    if node is not None:
        _collect_lines(node, (), config.lines)
    return values, config


def yaml_error(path: str | os.PathLike[str], exc: yaml.MarkedYAMLError) -> ConfigError:
    """``file:line:column: problem`` from PyYAML's multi-line message."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = " ".join(part for part in (exc.context, exc.problem) if part) or "not valid YAML"
    return ConfigError(f"{where}: not valid YAML: {problem}")


def json_error(path: str | os.PathLike[str], exc: json.JSONDecodeError) -> ConfigError:
    """``file:line:column: problem`` from a JSON decode error."""
    return ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}")


def read_json_config(path: str | os.PathLike[str]) -> Any:
    """A JSON config file's content; a file that does not parse raises :class:`ConfigError` (file:line:column)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise json_error(path, exc) from None


def _collect_lines(node: yaml.Node, key: Key, lines: dict[Key, int]) -> None:
    lines[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for name, value in node.value:
            if isinstance(name, yaml.ScalarNode):
                _collect_lines(value, (*key, name.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for position, value in enumerate(node.value):
            _collect_lines(value, (*key, position), lines)


def config_origin(message: str) -> str | None:
    """Where a resolved path named in an error ``message`` was written (``file:line: 'value'``), if one is."""
    found = [path for path in _ORIGINS if re.search(re.escape(path) + r"(?![\w.-])", message)]
    return _ORIGINS[max(found, key=len)] if found else None


__all__ = ["ConfigFile", "NAME_OR_PATH", "config_origin", "json_error", "names_a_path", "read_config", "read_json_config", "yaml_error"]
