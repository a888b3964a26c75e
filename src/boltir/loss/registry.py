"""Losses by name, and :func:`build_loss`, which turns a configuration value into a loss."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Union

from boltir.errors import ConfigError
from boltir.loss import listwise, pairwise, pointwise
from boltir.loss.base import RankingLoss, WeightedLoss


def registered_losses() -> dict[str, type[RankingLoss]]:
    """Every loss class that names itself (its ``name`` class attribute), by that name, in definition order.

    A new loss is one class with a ``name`` in one of loss/'s modules (a new module also gets its export line in
    ``boltir.loss``); nothing lists it again.
    """
    found: dict[str, type[RankingLoss]] = {}
    for module in (pointwise, pairwise, listwise):  # the usual order: pointwise, pairwise, listwise
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, RankingLoss) and "name" in vars(value):
                found.setdefault(value.name, value)
    pending = list(RankingLoss.__subclasses__())
    while pending:  # losses defined elsewhere (a user's own subclass), after the built-in ones
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if "name" in vars(cls):
            found.setdefault(cls.name, cls)
    return found


LOSSES: dict[str, type[RankingLoss]] = registered_losses()

LossSpec = Union[str, Mapping[str, Any], RankingLoss, Sequence[Any]]


def build_loss(spec: LossSpec) -> RankingLoss:
    """Build a loss from a name (``"ranknet"``), a mapping (``{"name": "infonce", "temperature": 0.05}``), a loss
    instance (returned as is), or a list of those, each with an optional ``"weight"`` (default 1), or of
    ``(spec, weight)`` tuples, which gives a :class:`WeightedLoss`."""
    if isinstance(spec, RankingLoss):
        return spec
    if isinstance(spec, str):
        return _build_named(spec, {})
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "weight" in options:
            weight = options.pop("weight")
            return WeightedLoss([(build_loss(options), weight)])
        if "name" not in options:
            raise ConfigError(f"a loss mapping needs a 'name' (one of {', '.join(LOSSES)}), got {spec!r}")
        return _build_named(options.pop("name"), options)
    if isinstance(spec, Sequence) and not isinstance(spec, (bytes, bytearray)):
        if not spec:
            raise ConfigError("a list of losses must name at least one loss")
        return WeightedLoss([_weighted(item) for item in spec])
    raise ConfigError(f"a loss must be a name, a mapping, a list or a RankingLoss, got {type(spec).__name__}")


def _weighted(item: Any) -> tuple[RankingLoss, float]:
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ConfigError(f"a weighted loss tuple must be (loss, weight), got {item!r}")
        return build_loss(item[0]), item[1]
    if isinstance(item, Mapping):
        options = dict(item)
        weight = options.pop("weight", 1.0)
        return build_loss(options), weight
    if isinstance(item, (str, RankingLoss)):
        return build_loss(item), 1.0
    raise ConfigError(f"each loss of a list must be a name, a mapping or a RankingLoss, got {type(item).__name__}")


def _build_named(name: Any, options: dict[str, Any]) -> RankingLoss:
    losses = registered_losses()
    if not isinstance(name, str) or name not in losses:
        raise ConfigError(f"unknown loss {name!r}; valid names: {', '.join(losses)}")
    cls = losses[name]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    # Only named parameters: a loss without __init__ shows nn.Module's (*args, **kwargs).
    accepted = [p.name for p in inspect.signature(cls).parameters.values() if p.kind in named]
    for option in options:
        if option not in accepted:
            valid = ", ".join(accepted) if accepted else "none"
            raise ConfigError(f"unknown option {option!r} for loss {name!r}; valid options: {valid}")
    return cls(**options)
