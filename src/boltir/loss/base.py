"""The base class every ranking loss shares, the checks it runs, and the weighted sum of several losses."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from boltir.errors import ConfigError


class RankingLoss(nn.Module):
    """A loss over score lists, one list per query, averaged over queries.

    Subclasses implement :meth:`per_query`. :meth:`forward` checks shapes and neutralises padded entries first,
    so every loss treats padding the same way: padded entries add nothing to the value or the gradient. A
    subclass sets ``name`` to be built by that name (:func:`boltir.loss.build_loss`).
    """

    name: ClassVar[str]

    def forward(self, scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean loss over queries; ``scores``/``targets`` are ``[num_queries, list_size]``, ``mask`` True where real."""
        mask = check_lists(scores, targets, mask)
        # masked_fill, not multiplication: inf or NaN in padded slots then gives neither NaN values nor NaN gradients.
        scores = scores.masked_fill(~mask, 0.0)
        targets = targets.to(scores.dtype).masked_fill(~mask, 0.0)
        losses = self.per_query(scores, targets, mask)
        return losses.sum() / max(losses.numel(), 1)

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        """The loss of each query, ``[num_queries]``; padded entries hold 0 in ``scores`` and ``targets``."""
        raise NotImplementedError


def check_lists(scores: Tensor, targets: Tensor, mask: Tensor | None) -> Tensor:
    """Raise :class:`ConfigError` unless the three tensors describe the same lists; return the (default) mask."""
    if scores.dim() != 2:
        raise ConfigError(f"scores must be [num_queries, list_size], got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ConfigError(f"scores must be a float tensor, got dtype {scores.dtype}")
    if targets.shape != scores.shape:
        raise ConfigError(
            f"targets must have the shape of scores, expected {tuple(scores.shape)}, got {tuple(targets.shape)}"
        )
    if mask is None:
        return torch.ones_like(scores, dtype=torch.bool)
    if mask.shape != scores.shape:
        raise ConfigError(
            f"mask must have the shape of scores, expected {tuple(scores.shape)}, got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ConfigError(f"mask must be a bool tensor (True for real entries), got dtype {mask.dtype}")
    return mask


def masked_mean(values: Tensor, mask: Tensor, dim: int | tuple[int, ...] = -1) -> Tensor:
    """Mean of ``values`` where ``mask`` is True along ``dim``; 0 where nothing is True (never NaN)."""
    return values.where(mask, 0.0).sum(dim) / mask.sum(dim).clamp(min=1)


def check_positive(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise :class:`ConfigError` unless it is a finite number above 0."""
    number = _as_float(name, value)
    if not number > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return number


def check_non_negative(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise :class:`ConfigError` unless it is a finite number of at least 0."""
    number = _as_float(name, value)
    if not number >= 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return number


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool):  # bool is an int, but True as a temperature is a mistake
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return number


class WeightedLoss(RankingLoss):
    """The weighted sum of several ranking losses, e.g. a distillation loss plus a little of a label loss."""

    def __init__(self, losses: list[tuple[RankingLoss, float]]) -> None:
        super().__init__()
        if not losses:
            raise ConfigError("WeightedLoss needs at least one (loss, weight) pair")
        for loss, _ in losses:
            if not isinstance(loss, RankingLoss):
                raise ConfigError(f"WeightedLoss takes RankingLoss instances, got {type(loss).__name__}")
        self.losses = nn.ModuleList(loss for loss, _ in losses)
        self.weights = [_as_float("loss weight", weight) for _, weight in losses]

    def per_query(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        # Summing per-query losses then averaging equals the weighted sum of the losses' means.
        parts = [weight * loss.per_query(scores, targets, mask) for loss, weight in zip(self.losses, self.weights)]
        return torch.stack(parts).sum(0)

    def extra_repr(self) -> str:
        return f"weights={self.weights}"
