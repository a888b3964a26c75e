"""Relative paths in the config files of ``boltir fit|index|search|re_rank``, resolved against each file's folder.

Before Lightning's CLI reads them, every ``--config FILE`` is read here and handed on as its content with the
relative values of path options made absolute (the rule of :mod:`boltir._config_files`). A value is a path
when the parameter it sets is typed as one (``os.PathLike``, ``pathlib.Path``, Lightning's ``_PATH``), in the
signature of the class its ``class_path`` names, the Trainer method of the command, or Lightning's Trainer;
options that may also be names (``model_name_or_path``, datasets' ``source`` / ``queries`` / ``corpus``,
``ckpt_path``) are paths only when they read as one. A value naming another YAML (or JSON) file where a
section or class is expected (``data: data.yaml``) is that file's content, resolved against *its* folder; a
missing one is an error naming the line. Values given on the command line are left alone: relative to the
working directory.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pathlib
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonargparse import get_loader
from lightning.pytorch import Trainer as LightningTrainer

from .._config_files import NAME_OR_PATH, PATH, ConfigFile, Key, read_config
from ..errors import ConfigError
from ..trainer import Trainer

_NESTED = (".yaml", ".yml", ".json")
# where a class_path without a module (``class_path: ModelCheckpoint``) is looked for, as jsonargparse finds them
_SHORT_NAME_MODULES = ("boltir", "lightning.pytorch.callbacks", "lightning.pytorch.loggers")
_SECTIONS = {"trainer": LightningTrainer}  # top-level sections that are a class's arguments without class_path
Parameters = dict[str, "inspect.Parameter | None"]


def resolve_config_args(command: str, args: list[str]) -> list[str]:
    """``args`` with every ``--config FILE`` replaced by the file's content (as JSON), its paths resolved."""
    out, position = [], 0
    while position < len(args):
        arg = args[position]
        if arg in ("--config", "-c") and position + 1 < len(args):
            out += [arg, _resolved_content(command, args[position + 1])]
            position += 2
            continue
        if arg.startswith("--config="):
            arg = "--config=" + _resolved_content(command, arg.split("=", 1)[1])
        out.append(arg)
        position += 1
    return out


def _resolved_content(command: str, value: str) -> str:
    if value.lstrip().startswith(("{", "[")) or not Path(value).is_file():
        return value  # a config given inline, on the command line: relative to the working directory
    values, config = read_config(value, get_loader("yaml"))
    if not isinstance(values, dict):
        return value  # not a mapping: Lightning's CLI says what is wrong with it
    method = getattr(Trainer, command, None)
    parameters = _parameters(method) if method is not None else {}
    resolved = _Resolver(config).section(values, parameters, ())
    return json.dumps(resolved, default=str)


class _Resolver:
    def __init__(self, config: ConfigFile) -> None:
        self.config = config

    def section(self, values: dict[str, Any], parameters: Parameters, key: Key) -> dict[str, Any]:
        """The options of one class (or Trainer method), each resolved by its parameter's type."""
        out = {}
        for name, value in values.items():
            if not isinstance(name, str):
                out[name] = value
            elif not key and name in _SECTIONS and name not in parameters:
                section = _parameters(_SECTIONS[name])
                out[name] = self.nested(value, (name,), lambda resolver, v, k: resolver.section(v, section, k))
            else:
                out[name] = self.value(value, name, parameters.get(name), (*key, name))
        return out

    def value(self, value: Any, name: str, parameter: inspect.Parameter | None, key: Key) -> Any:
        kind = _path_kind(name, parameter)
        if kind is not None and isinstance(value, str):
            return self.config.resolve(value, kind, key)
        if isinstance(value, list):
            return [self.value(item, name, parameter, (*key, position)) for position, item in enumerate(value)]
        if isinstance(value, dict) and "class_path" in value:
            return self.class_options(value, key)
        if kind is None and isinstance(value, str) and value.endswith(_NESTED) and not _takes_text(parameter):
            return self.nested(value, key, _Resolver.class_options)
        return value

    def class_options(self, values: dict[str, Any], key: Key) -> dict[str, Any]:
        """``{class_path, init_args}``: the arguments resolved by the signature of the class it names."""
        if not isinstance(values, dict) or "class_path" not in values:
            return values
        parameters = _class_parameters(values["class_path"])
        out = {}
        for name, value in values.items():
            if name == "init_args":
                out[name] = self.nested(value, (*key, name), lambda resolver, v, k: resolver.section(v, parameters, k))
            elif name in ("class_path", "dict_kwargs"):
                out[name] = value
            else:  # init args may also sit beside class_path
                out[name] = self.value(value, name, parameters.get(name), (*key, name))
        return out

    def nested(self, value: Any, key: Key, resolve: Callable[[_Resolver, Any, Key], Any]) -> Any:
        """A dict resolved in place; a string naming a YAML file beside this one: that file's content, resolved
        against its own folder."""
        if isinstance(value, dict):
            return resolve(self, value, key)
        if not (isinstance(value, str) and value.endswith(_NESTED)):
            return value
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(os.path.normpath(self.config.folder / value))
        if not path.is_file():
            raise ConfigError(f"{self.config.where(key)}: config file '{value}' not found (looked for {path}).")
        values, config = read_config(path, get_loader("yaml"))
        return _Resolver(config).nested(values, (), resolve) if isinstance(values, dict) else values


def _path_kind(name: str, parameter: inspect.Parameter | None) -> str | None:
    if parameter is None:
        return None
    if name in NAME_OR_PATH:
        return NAME_OR_PATH[name]
    return PATH if _is_path_type(parameter.annotation) else None


def _takes_text(parameter: inspect.Parameter | None) -> bool:
    """Whether a parameter takes a plain string (then ``x.json`` is that string, not a config file to read)."""
    if parameter is None:
        return False
    annotation = parameter.annotation
    if isinstance(annotation, str):
        return re.search(r"\bstr\b", annotation) is not None
    return annotation is str or str in typing.get_args(annotation)


def _is_path_type(annotation: Any) -> bool:
    if isinstance(annotation, str):  # a hint that could not be evaluated
        return re.search(r"PathLike|\bPath\b|_PATH", annotation) is not None
    if annotation is os.PathLike or typing.get_origin(annotation) is os.PathLike:
        return True
    if isinstance(annotation, type) and issubclass(annotation, (os.PathLike, pathlib.PurePath)):
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and any(
        _is_path_type(arg) for arg in typing.get_args(annotation)
    )


def _class_parameters(class_path: Any) -> Parameters:
    if not isinstance(class_path, str):
        return {}
    module, _, name = class_path.rpartition(".")
    for candidate in [module] if module else _SHORT_NAME_MODULES:
        try:
            return _parameters(getattr(importlib.import_module(candidate), name))
        except (ImportError, AttributeError, ValueError):
            continue
    return {}  # Lightning's CLI reports a class_path that does not import


def _parameters(target: Any) -> Parameters:
    """A callable's (or class's) parameters with their annotations evaluated where possible; a class's
    ``**kwargs`` reach its base classes' parameters (as jsonargparse follows them)."""
    if inspect.isclass(target):
        found: Parameters = {}
        for base in reversed(target.__mro__[:-1]):  # the class's own parameters win
            if "__init__" in vars(base):
                found.update(_signature_parameters(base.__init__))
        return found
    return _signature_parameters(target)


def _signature_parameters(function: Any) -> Parameters:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # forward references that do not evaluate: the annotations' text is used instead
        hints = {}
    return {name: parameter.replace(annotation=hints.get(name, parameter.annotation))
            for name, parameter in signature.parameters.items()}
