"""LoRA adapters on any family's backbone (through peft), and saving them merged into a plain HF model.

Only the adapters (and the family's own layers: projections, heads) train; the backbone's weights stay frozen.
Saving folds every adapter into its layer's weight, so the saved directory is an ordinary HF model that loads
and scores without peft.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor, nn

from ...errors import ConfigError, require


def check_lora_options(r: int, alpha: float, dropout: float) -> None:
    """Raise :class:`ConfigError` for LoRA options that cannot work (``r`` 0 means no LoRA)."""
    if r < 0:
        raise ConfigError(f"lora_r must be 0 (no LoRA) or a positive rank, got {r}.")
    if r and alpha <= 0:
        raise ConfigError(f"lora_alpha must be positive, got {alpha}.")
    if not 0 <= dropout < 1:
        raise ConfigError(f"lora_dropout must be in [0, 1), got {dropout}.")


def is_lora(module: nn.Module | None) -> bool:
    """Whether ``module`` is a backbone wrapped by :func:`apply_lora`."""
    return module is not None and hasattr(module, "peft_config") and hasattr(module, "get_base_model")


def default_lora_targets(backbone: nn.Module) -> list[str]:
    """Every linear layer of ``backbone`` that trains: not its output embedding (an LM head), and not layers the
    family froze (BERT's unused pooler), whose adapters would get no gradient (and stall DDP)."""
    output = backbone.get_output_embeddings() if hasattr(backbone, "get_output_embeddings") else None
    return [name for name, module in backbone.named_modules()
            if isinstance(module, nn.Linear) and module is not output
            and all(p.requires_grad for p in module.parameters(recurse=False))]


def apply_lora(
    backbone: nn.Module, r: int, alpha: float = 32, target_modules: Sequence[str] | str | None = None, dropout: float = 0.0
) -> nn.Module:
    """``backbone`` wrapped with rank-``r`` LoRA adapters (scale ``alpha / r``) on ``target_modules`` (module
    names or name suffixes, or a peft selector such as ``"all-linear"``; None: :func:`default_lora_targets`); only
    the adapters then train."""
    peft = require("peft", "peft", "LoRA adapters (lora_r > 0)", extra="lora")
    if isinstance(target_modules, str):  # one of peft's own selectors, e.g. "all-linear"
        return peft.get_peft_model(backbone, peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                                             target_modules=target_modules))
    targets = list(target_modules) if target_modules else default_lora_targets(backbone)
    names = {name for name, _ in backbone.named_modules()}
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing or not targets:
        raise ConfigError(f"lora_target_modules {missing or targets} name no module of {type(backbone).__name__}; "
                          "pass names of its linear layers (e.g. query, value).")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    return peft.get_peft_model(backbone, config)


def merge_lora(peft_model: nn.Module) -> dict[str, Tensor]:
    """The base model's weights with every LoRA adapter folded in, under the base model's own names."""
    from peft.tuners.lora import LoraLayer

    base = peft_model.get_base_model()
    state = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            weight = state[f"{name}.weight"]
            for adapter in module.active_adapters:
                weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
            state[f"{name}.weight"] = weight
    return state


def save_merged(backbone: nn.Module, directory: str | Path) -> None:
    """Save ``backbone`` as a plain HF model: with its adapters merged in when it has any."""
    if is_lora(backbone):
        backbone.get_base_model().save_pretrained(directory, state_dict=merge_lora(backbone))
    else:
        backbone.save_pretrained(directory)


__all__ = ["apply_lora", "check_lora_options", "default_lora_targets", "is_lora", "merge_lora", "save_merged"]
