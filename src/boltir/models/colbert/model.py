"""The ColBERT model: backbone → per-token projection → L2 norm → token vectors with a mask; MaxSim scores."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...types import TokenVectors
from ..bi_encoder import BiEncoderModel
from ..config import CONFIG_NAME
from ..foreign import detect_layout
from ..layers import maxsim
from ..layers.tokenize import insert_after_first
from ..model import run_backbone
from ..resolve import resolve_model_dir
from .config import ColBERTConfig


class ColBERTModel(BiEncoderModel):
    """Encodes texts into per-token vectors (:class:`TokenVectors`); ``score`` is MaxSim.

    Loads Stanford ColBERT and PyLate checkpoints as they are (projection, markers, lengths; see
    :mod:`boltir.models.foreign.colbert`), or wraps any encoder directory (e.g. the answerai-colbert-small backbone
    from :mod:`boltir.models.convert`), whose new projection starts random and is learned by ``fit``.
    """

    config_class: ClassVar[type[ColBERTConfig]] = ColBERTConfig
    representation: ClassVar[str] = "multi-vector"
    config: ColBERTConfig

    def build_layers(self) -> None:
        c = self.config
        hidden = self.backbone.config.hidden_size
        self.projection = nn.Linear(hidden, c.embedding_dim, bias=c.projection_bias) if c.embedding_dim else None
        if c.query_augmentation and self.tokenizer.mask_token_id is None:
            raise ConfigError("the tokenizer has no [MASK] token to augment queries with: set query_augmentation=False.")
        punctuation = list(string.punctuation)
        skip = self._skip_ids(punctuation if c.mask_punctuation else [], c.doc_mask_tokens, "doc_mask_tokens")
        if c.mask_special_tokens:
            skip |= set(self.tokenizer.all_special_ids)
        query_skip = self._skip_ids(punctuation if c.query_mask_punctuation else [], c.query_mask_tokens, "query_mask_tokens")
        self.register_buffer("skip_ids", torch.tensor(sorted(skip), dtype=torch.long), persistent=False)
        self.register_buffer("query_skip_ids", torch.tensor(sorted(query_skip), dtype=torch.long), persistent=False)

    def _skip_ids(self, punctuation: list[str], tokens: list[str] | None, option: str) -> set[int]:
        """Ids of tokens that get no vector: punctuation the vocabulary has, and the named tokens (which it must have)."""
        unk = self.tokenizer.unk_token_id
        skip = {i for i in self.tokenizer.convert_tokens_to_ids(punctuation) if i != unk}
        for token in tokens or []:
            skip.add(self._token_id(token, option))
        return skip

    @classmethod
    def default_config(cls, directory: Path) -> ColBERTConfig:
        """A Stanford ColBERT or PyLate checkpoint's own settings; ColBERT's defaults for a plain encoder."""
        found = detect_layout(directory)
        if found is not None and found.family == cls.config_class.family:
            return ColBERTConfig(**found.options)
        return ColBERTConfig()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], config: Any = None, **overrides: Any) -> ColBERTModel:
        """Load a saved boltir ColBERT, a Stanford ColBERT or PyLate checkpoint (with its projection), or wrap an encoder."""
        model = super().from_pretrained(name_or_path, config=config, **overrides)
        directory = resolve_model_dir(name_or_path)
        found = None if (directory / CONFIG_NAME).is_file() else detect_layout(directory)
        if found is not None and found.family == cls.config_class.family:
            model.load_foreign_heads(found.head_weights, f"{directory} ({found.layout})")
        return model

    def load_foreign_heads(self, weights: dict[str, Tensor], source: str) -> None:
        """Copy a foreign checkpoint's projection into this model's; the config must give it the same shape."""
        own = self.head_state_dict()
        for name, tensor in weights.items():
            if name not in own or own[name].shape != tensor.shape:
                shape = tuple(own[name].shape) if name in own else None
                raise ConfigError(f"{source} holds {name} of shape {tuple(tensor.shape)}, but this config gives {shape}: "
                                  "leave embedding_dim and projection_bias as the checkpoint sets them.")
        self.load_state_dict(weights, strict=False)

    def index_fingerprint(self) -> dict:
        c = self.config
        return {
            "dim": self.embedding_dim,
            "similarity": "maxsim",
            "normalize": c.normalize,
            "mask_punctuation": c.mask_punctuation,
            "doc_marker": c.doc_marker,
            "doc_mask_tokens": c.doc_mask_tokens,
            "aggregation": [c.query_aggregation, c.doc_aggregation],
            "backbone": self.backbone.config.model_type,
        }

    # -- tokenizing --------------------------------------------------------------------------------
    def _tokenize(self, texts: list[str], length: int, prefix: str, marker: int | None, pad_to_length: bool) -> dict[str, Tensor]:
        encoding = self.tokenizer(
            [prefix + t for t in texts],
            padding="max_length" if pad_to_length else True,
            truncation=True,
            max_length=length - (marker is not None),
            return_tensors="pt",
        )
        encoding = {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        # after [CLS], as ColBERT places its [Q] / [D] markers
        return insert_after_first(encoding, marker) if marker is not None else encoding

    def tokenize_queries(self, queries: list[str]) -> dict[str, Tensor]:
        c = self.config
        encoding = self._tokenize(queries, c.query_length, c.query_prefix, self.query_marker_id, c.query_augmentation)
        if c.query_augmentation:
            padding = encoding["attention_mask"] == 0
            encoding["input_ids"] = encoding["input_ids"].masked_fill(padding, self.tokenizer.mask_token_id)
            if c.attend_to_mask_tokens:
                encoding["attention_mask"] = torch.ones_like(encoding["attention_mask"])
        return encoding

    def tokenize_docs(self, docs: list[str]) -> dict[str, Tensor]:
        c = self.config
        return self._tokenize(docs, c.doc_length, c.doc_prefix, self.doc_marker_id, False)

    # -- encoding ----------------------------------------------------------------------------------
    def _tokens(self, backbone: nn.Module, encoding: dict[str, Tensor], mask: Tensor) -> TokenVectors:
        vectors = run_backbone(backbone, **encoding).last_hidden_state
        if self.projection is not None:
            vectors = self.projection(vectors)
        if self.config.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return TokenVectors(vectors * mask.unsqueeze(-1).to(vectors.dtype), mask)

    def encode_queries(self, encoding: dict[str, Tensor]) -> TokenVectors:
        """Query token vectors; with augmentation every position (its [MASK] padding included) counts."""
        mask = encoding["attention_mask"].bool()
        if self.config.query_augmentation:
            mask = mask | (encoding["input_ids"] == self.tokenizer.mask_token_id)
        ids = encoding["input_ids"]
        mask = mask & ~torch.isin(ids, self.query_skip_ids.to(ids.device))
        return self._tokens(self.query_backbone or self.backbone, encoding, mask)

    def encode_docs(self, encoding: dict[str, Tensor]) -> TokenVectors:
        """Document token vectors; padding and skipped (punctuation / special) tokens do not count."""
        ids = encoding["input_ids"]
        mask = encoding["attention_mask"].bool() & ~torch.isin(ids, self.skip_ids.to(ids.device))
        return self._tokens(self.backbone, encoding, mask)

    def score(self, query_vectors: TokenVectors, doc_vectors: TokenVectors) -> Tensor:
        """``[Q, N]`` MaxSim scores (or the configured aggregations)."""
        return maxsim(query_vectors, doc_vectors, self.config.query_aggregation, self.config.doc_aggregation)


__all__ = ["ColBERTModel"]
