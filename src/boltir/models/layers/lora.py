"""LoRA adapters on any family's backbone (through peft), and merging them back into plain weights for saving.

A model with adapters trains only them; it saves as the plain backbone with every adapter folded in, so the saved
directory loads without peft.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ...errors import require


def apply_lora(
    backbone: nn.Module, r: int, alpha: int = 32, target_modules: Sequence[str] | str | None = None, dropout: float = 0.0
) -> nn.Module:
    """``backbone`` wrapped with rank-``r`` LoRA adapters on ``target_modules`` (every linear layer by default);
    only the adapters then train."""
    peft = require("peft", "peft", "LoRA adapters (lora_r > 0)", extra="lora")
    targets = list(target_modules) if isinstance(target_modules, (list, tuple)) else target_modules
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets or "all-linear")
    return peft.get_peft_model(backbone, config)


def is_lora(module: nn.Module) -> bool:
    """Whether ``module`` is a backbone wrapped by :func:`apply_lora`."""
    return hasattr(module, "peft_config") and hasattr(module, "get_base_model")


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


def save_merged(backbone: nn.Module, directory: str) -> None:
    """Save ``backbone`` as a plain HF model: with its adapters merged in when it has any."""
    if is_lora(backbone):
        backbone.get_base_model().save_pretrained(directory, state_dict=merge_lora(backbone))
    else:
        backbone.save_pretrained(directory)


__all__ = ["apply_lora", "is_lora", "merge_lora", "save_merged"]
