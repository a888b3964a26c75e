"""Learning-rate schedules stepped once per optimiser step, usable from YAML (``lr_scheduler: class_path: ...``)."""

from __future__ import annotations

from typing import ClassVar

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ..errors import ConfigError


class LinearWarmupDecay(LambdaLR):
    """Linear warm-up from 0 to the optimiser's lr over ``warmup_steps``, then linear decay to
    ``final_factor * lr`` at ``total_steps`` (BERT's schedule, as transformers' ``get_linear_schedule_with_warmup``
    but without its first step at lr 0).

    ``total_steps`` left out is filled in with the trainer's ``estimated_stepping_batches`` when fit starts (also
    when a fit resumes with a new ``max_steps``), so a config changing steps, epochs or accumulation needs no second edit.
    """

    interval: ClassVar[str] = "step"  # read by boltir's CLI and module: step after every optimiser step

    def __init__(
        self, optimizer: Optimizer, warmup_steps: int = 0, total_steps: int | None = None, final_factor: float = 0.0, last_epoch: int = -1
    ) -> None:
        if warmup_steps < 0 or (total_steps is not None and total_steps < 1) or not 0 <= final_factor <= 1:
            raise ConfigError(
                f"LinearWarmupDecay needs warmup_steps >= 0, total_steps >= 1 and 0 <= final_factor <= 1; got "
                f"{warmup_steps}, {total_steps}, {final_factor}."
            )
        self.warmup_steps, self.total_steps, self.final_factor = warmup_steps, total_steps, final_factor
        self.given_total_steps = total_steps
        super().__init__(optimizer, self.factor, last_epoch)

    def fit_to(self, total_steps: int) -> None:
        """Decay to the end of a training run of ``total_steps`` steps, unless the config fixed its own total."""
        if self.given_total_steps is None and total_steps != self.total_steps:
            self.total_steps = total_steps
            for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base_lr * self.factor(self.last_epoch)
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def factor(self, step: int) -> float:
        """The multiple of the base lr at ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.total_steps is None:
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 1.0 - (1.0 - self.final_factor) * progress

    def state_dict(self) -> dict:
        # LambdaLR would store the bound method ``factor``; the settings are state enough.
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


__all__ = ["LinearWarmupDecay"]
