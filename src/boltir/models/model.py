"""The base of every model family: a backbone held by composition, a tokenizer, and a boltir config.

A saved model is a plain HF directory (``config.json``, weights, tokenizer files) plus ``boltir_config.json``
and, when the family has layers of its own, ``boltir_heads.safetensors``. The backbone part still loads
with ``transformers.AutoModel``.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .._config_files import read_json_config
from .._io import atomic_dir
from ..errors import ConfigError, ModelNotFoundError
from .card import TrainingSummary, write_card
from .config import BoltirConfig, read_family
from .foreign import lightning_ir
from .layers.attention import register_boltir_attention
from .layers.lora import is_lora, save_merged
from .layers.packing import PackedTokens
from .layers.tokenize import tokenize_texts
from .onnx_backbone import check_backend, is_onnx_export, onnx_backbones, read_export_info
from .resolve import resolve_model_dir
from .weights import check_weights, record_weight_hashes

HEADS_NAME = "boltir_heads.safetensors"
ConfigT = TypeVar("ConfigT", bound=BoltirConfig)
ModelT = TypeVar("ModelT", bound="BoltirModel")

# Kernels the backbones' scaled-dot-product attention may use, in PyTorch's order of preference. cuDNN's is left
# out: it builds an execution plan for every new input shape (milliseconds of host time per call), and batches of
# texts change shape all the time; on an H200 that was over half of a bi-encoder training step.
SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@contextlib.contextmanager
def no_weight_loading_bars() -> Iterator[None]:
    """transformers 5 draws a "Loading weights" bar for every local load (done in well under a second); boltir
    loads several models per command, so their bars are hidden while it loads and come back afterwards."""
    shown = hf_logging.is_progress_bar_enabled()
    if shown:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def run_backbone(backbone: nn.Module, **inputs: Any) -> Any:
    """``backbone(**inputs)`` with attention restricted to :data:`SDPA_BACKENDS`."""
    with sdpa_kernel(SDPA_BACKENDS):
        return backbone(**inputs)


def load_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:  # decoder LLMs ship without one; their EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def is_decoder(backbone_config: Any) -> bool:
    """True for causal LMs (Llama, Qwen2, GPT-2, ...), whose last token sees the whole sequence."""
    architectures = getattr(backbone_config, "architectures", None) or []
    return bool(getattr(backbone_config, "is_decoder", False)) or any("CausalLM" in a for a in architectures)


def freeze_pooler(backbone: nn.Module) -> None:
    """Freeze a backbone's pooler (BERT's dense + tanh over [CLS]) that the model's scores never use: DDP would
    otherwise wait for gradients that never come (and refuse to train)."""
    pooler = getattr(backbone, "pooler", None)
    if isinstance(pooler, nn.Module):
        pooler.requires_grad_(False)


class BoltirModel(nn.Module, Generic[ConfigT]):
    """A model family's model: ``backbone`` (an HF model), ``tokenizer`` and ``config``."""

    config_class: ClassVar[type[BoltirConfig]] = BoltirConfig
    backbone_class: ClassVar[Any] = AutoModel

    def __init__(self, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: ConfigT) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.config = config
        self.name_or_path = str(getattr(backbone, "name_or_path", ""))
        self.source_dir: Path | None = None  # the directory it was loaded from (its card names licence and base model)
        # whether batches can run packed, end to end without padding (see pack); families that can set it
        self.packable = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a copy unpickled in another process (DDP spawn) finds its backbone set to boltir's attention, which that
        # process has not registered with transformers yet
        register_boltir_attention()
        super().__setstate__(state)

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def default_config(cls, directory: Path) -> BoltirConfig:
        """The config for a plain HF directory without ``boltir_config.json``; families read hints there."""
        return cls.config_class()

    @classmethod
    def from_pretrained(
        cls: type[ModelT],
        name_or_path: str | os.PathLike[str],
        config: BoltirConfig | dict | None = None,
        backend: str = "auto",
        *,
        verify: bool = False,
        **overrides: Any,
    ) -> ModelT:
        """Load a saved boltir model, or wrap a plain HF / sentence-transformers directory or hub name.

        ``config`` replaces the saved config; a dict (like ``overrides``) changes only the options it names.
        ``backend="onnx"`` loads a directory written by ``boltir export onnx``: its backbones run on ONNX Runtime
        (``"auto"`` does too for such a directory, and loads PyTorch weights otherwise). A
        truncated or garbled weight file raises :class:`DamagedFileError` naming it; ``verify=True`` also checks
        each weight file against the SHA-256 boltir recorded when it saved the model (reads every byte once).
        """
        check_backend(backend)
        directory = resolve_model_dir(name_or_path)
        if backend == "onnx" or (backend == "auto" and is_onnx_export(directory)):
            return cls._from_onnx_export(directory, config, overrides)
        check_weights(directory, verify)
        saved = (directory / "boltir_config.json").is_file()
        if not saved and lightning_ir.family(directory) is not None:
            return cls._from_lightning_ir(directory, config, overrides, str(name_or_path))
        family = read_family(directory) if saved and config is None else None
        if family is not None and family != cls.config_class.family:  # e.g. BiEncoderModel given a ColBERT directory
            target = _family_class(cls, family)
            if target is not None:
                return target.from_pretrained(name_or_path, **overrides)  # checked above: no verify again
        if isinstance(config, dict):  # a dict changes options of the saved (or default) config
            config, overrides = None, {**config, **overrides}
        if config is None:
            config = cls.config_class.load(directory) if saved else cls.default_config(directory)
        if overrides:
            config = config.replace(**overrides)
        with no_weight_loading_bars():
            backbone = cls.load_backbone(directory, config)
            model = cls(backbone, load_tokenizer(directory), config)
            model.name_or_path = str(name_or_path)
            model.source_dir = directory
            if saved:
                model.load_saved_parts(directory)
        return model

    @classmethod
    def _from_lightning_ir(cls, directory: Path, config: BoltirConfig | dict | None, overrides: dict[str, Any],
                           name: str) -> BoltirModel:
        """A Lightning IR directory as the boltir family its model type is (see :mod:`boltir.models.foreign.lightning_ir`):
        ``BiEncoderModel`` loads a ColBERT or SPLADE directory as that subclass."""
        family = lightning_ir.family(directory)
        target = _family_class(cls, family)
        if target is None:
            raise ConfigError(f"{directory} holds a Lightning IR {family} model, which {cls.__name__} does not load: "
                              "load it with boltir.load_model or that family's class.")
        if isinstance(config, dict):
            config, overrides = None, {**config, **overrides}
        if config is None:
            config = target.config_class.from_dict(lightning_ir.boltir_options(directory), source=f"{directory}/config.json")
        if overrides:
            config = config.replace(**overrides)
        model = target.from_backbone_config(lightning_ir.backbone_config(directory), lightning_ir.load_tokenizer(directory), config)
        lightning_ir.load_weights(model, directory)
        model.eval()
        model.name_or_path = name
        return model

    @classmethod
    def _from_onnx_export(cls: type[ModelT], directory: Path, config: BoltirConfig | dict | None, overrides: dict) -> ModelT:
        """The model with :class:`OnnxBackbone` graphs in place of its backbones; heads from the export's files."""
        info = read_export_info(directory)
        if isinstance(config, dict):
            config, overrides = None, {**config, **overrides}
        config = config or cls.config_class.load(directory)
        if overrides:
            config = config.replace(**overrides)
        graphs = onnx_backbones(directory, AutoConfig.from_pretrained(directory), list(info["graphs"]))
        model = cls(graphs.pop("backbone"), load_tokenizer(directory), config)
        model.load_saved_parts(directory)
        for name, graph in graphs.items():
            setattr(model, name, graph)
        model.name_or_path = str(info.get("source") or directory)
        return model

    @classmethod
    def from_backbone_config(cls: type[ModelT], backbone_config: Any, tokenizer: PreTrainedTokenizerBase, config: ConfigT) -> ModelT:
        """A randomly initialised model of the given backbone shape (for tests and for training from scratch)."""
        return cls(cls.backbone_class.from_config(backbone_config), tokenizer, config)

    @classmethod
    def load_backbone(cls, directory: Path, config: BoltirConfig) -> PreTrainedModel:
        try:
            return cls.backbone_class.from_pretrained(directory)
        except (OSError, ValueError) as exc:
            if not (directory / "config.json").is_file():
                raise ModelNotFoundError(f"{directory} holds no config.json: pass a directory of HF model files.") from exc
            raise

    def load_saved_parts(self, directory: Path) -> None:
        """Load what :meth:`save_into` wrote beside the backbone; families with more parts extend it."""
        if not (directory / HEADS_NAME).is_file():
            return
        state = load_file(str(directory / HEADS_NAME))
        missing, unexpected = self.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.startswith("backbone.")]
        if unexpected:
            raise ConfigError(f"{directory / HEADS_NAME} holds weights this model does not have: {unexpected[:5]}.")

    # -- saving ------------------------------------------------------------------------------------
    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights outside the backbone (projections, scoring heads, ...)."""
        return {k: v.contiguous() for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def save_pretrained(self, directory: str | os.PathLike[str], training: TrainingSummary | None = None) -> None:
        """Write backbone, tokenizer, boltir config, head weights (with the weight files' SHA-256) and a model card into ``directory`` atomically.

        The card (``README.md``) describes the model and, with ``training``, how it was fitted; a card already in
        ``directory`` that boltir did not write is kept as it is.
        """
        with atomic_dir(directory) as tmp:
            self.save_into(tmp)
            record_weight_hashes(tmp)  # every family's files, written: their SHA-256 for from_pretrained(verify=True)
            write_card(tmp, self, str(directory), training, previous=Path(directory), source=self.source_dir)

    def save_into(self, directory: Path) -> None:
        save_merged(self.backbone, directory)
        self.tokenizer.save_pretrained(directory)
        self.saved_config().save(directory)
        heads = self.head_state_dict()
        if heads:
            save_file(heads, str(directory / HEADS_NAME))

    def saved_config(self) -> BoltirConfig:
        """The config written beside the weights: with LoRA adapters merged into them there are none to rebuild."""
        if is_lora(self.backbone) and getattr(self.config, "lora_r", 0):
            return self.config.replace(lora_r=0)
        return self.config

    def backbones(self) -> dict[str, nn.Module]:
        """The model's transformer backbones by attribute name (what ``boltir export onnx`` exports)."""
        return {"backbone": self.backbone}

    def with_backbones(self: ModelT, backbones: dict[str, nn.Module]) -> ModelT:
        """A copy of this model that runs ``backbones`` (by attribute name) in place of its own and shares every
        other layer with it (pooling, projections, heads: their weights stay one set)."""
        clone = copy.copy(self)
        clone._modules = dict(self._modules)  # its own table of submodules; the layers in it stay shared
        clone._modules.update(backbones)
        return clone

    def describe(self) -> dict[str, Any]:
        """What an index manifest records about the model that built it."""
        return {"name_or_path": self.name_or_path, "class": type(self).__name__, "config": self.config.to_dict()}

    # -- tokenizing --------------------------------------------------------------------------------
    def tokenize(self, texts: list[str], max_length: int, prefix: str = "", append_eos: bool = False) -> dict[str, torch.Tensor]:
        if prefix:
            texts = [prefix + t for t in texts]
        if append_eos and self.tokenizer.eos_token:
            texts = [t + self.tokenizer.eos_token for t in texts]
        return tokenize_texts(self.tokenizer, texts, max_length)

    def pack(self, inputs: dict[str, torch.Tensor]) -> PackedTokens:
        """A padded batch of inputs end to end without padding, for the family's forward (where ``packable``)."""
        return PackedTokens.from_padded(inputs, self._position_offset())

    def _position_offset(self) -> int:
        """RoBERTa-style embeddings count positions from ``padding_idx + 1``; BERT-style from 0."""
        embeddings = getattr(self.backbone, "embeddings", None)
        padding_idx = getattr(embeddings, "padding_idx", None)
        return int(padding_idx) + 1 if padding_idx is not None else 0

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def _subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, depth first."""
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def _family_class(cls: type[BoltirModel], family: str | None) -> type[BoltirModel] | None:
    """``cls`` or the subclass of it whose config is of ``family`` (a ColBERT model is a bi-encoder too), or None."""
    return next((c for c in (cls, *_subclasses(cls)) if c.config_class.family == family), None)


def read_json(path: Path) -> dict[str, Any]:
    return read_json_config(path) if path.is_file() else {}


__all__ = ["BoltirModel", "is_decoder", "load_tokenizer", "read_json"]
