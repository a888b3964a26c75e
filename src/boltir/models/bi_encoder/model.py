"""The bi-encoder model: backbone → pooling → optional projection → optional normalisation."""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...errors import ConfigError
from ..foreign import detect_layout
from ..layers import Pooling, pad_right_for_causal_attention, pairwise_similarity
from ..layers.attention import try_boltir_attention
from ..layers.lora import apply_lora, save_merged
from ..layers.packing import PackedTokens
from ...types import SegmentedVectors
from ..layers.tokenize import insert_after_first
from ..layers.segments import Segments, max_over_segments, split_into_segments
from ..model import BoltirModel, freeze_pooler, is_decoder, read_json, run_backbone
from .config import BiEncoderConfig

# poolings of packed texts: their first token or the mean of their tokens
PACKED_POOLING = ("cls", "first", "mean")

_ST_POOLING_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "last",
}


def sentence_transformers_config(directory: Path) -> BiEncoderConfig | None:
    """Read a sentence-transformers folder (modules.json, pooling config, Normalize) into a config."""
    modules = read_json(directory / "modules.json")
    if not modules:
        return None
    pooling, normalize = "mean", False
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Pooling"):
            settings = read_json(directory / module.get("path", "") / "config.json")
            pooling = next((name for key, name in _ST_POOLING_MODES.items() if settings.get(key)), pooling)
        elif kind.endswith("Normalize"):
            normalize = True
    st = read_json(directory / "sentence_bert_config.json")
    max_length = int(st.get("max_seq_length", 256))
    prompts = read_json(directory / "config_sentence_transformers.json").get("prompts") or {}
    return BiEncoderConfig(
        query_pooling=pooling,
        doc_pooling=pooling,
        similarity="cosine" if normalize else "dot",
        normalize=normalize,
        query_length=max_length,
        doc_length=max_length,
        query_prefix=prompts.get("query", ""),
        doc_prefix=prompts.get("document", prompts.get("passage", "")),
    )


class BiEncoderModel(BoltirModel[BiEncoderConfig]):
    """Encodes queries and documents apart into vectors; ``score`` compares them."""

    config_class: ClassVar[type[BiEncoderConfig]] = BiEncoderConfig
    representation: ClassVar[str] = "dense"

    def __init__(self, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: BiEncoderConfig) -> None:
        super().__init__(backbone, tokenizer, config)
        freeze_pooler(backbone)  # pooling reads the token states, never BERT's pooler
        self.query_backbone = None if config.tied else copy.deepcopy(backbone)
        self.segments: Segments | None = None  # set by build_layers when long documents are split
        self.query_marker_id = self._token_id(config.query_marker, "query_marker")
        self.doc_marker_id = self._token_id(config.doc_marker, "doc_marker")
        self.build_layers()
        # single vectors of whole texts from one shared backbone can also run packed, without padding (see pack)
        self.packable = (self.representation == "dense" and self.segments is None and config.tied
                         and not is_decoder(backbone.config)
                         and {config.query_pooling, config.doc_pooling} <= set(PACKED_POOLING)
                         and try_boltir_attention(backbone))
        if config.lora_r:  # adapters last: the layers above read the plain backbone
            lora = (config.lora_r, config.lora_alpha, config.lora_target_modules, config.lora_dropout)
            self.backbone = apply_lora(self.backbone, *lora)
            if self.query_backbone is not None:
                self.query_backbone = apply_lora(self.query_backbone, *lora)

    def build_layers(self) -> None:
        """The layers between backbone and vectors; the sparse and multi-vector variants build their own."""
        config = self.config
        self.query_pooling = Pooling(config.query_pooling)
        self.doc_pooling = Pooling(config.doc_pooling)
        hidden = self.backbone.config.hidden_size
        self.projection = nn.Linear(hidden, config.embedding_dim, bias=config.projection_bias) if config.embedding_dim else None
        if is_decoder(self.backbone.config) and "last" in (config.query_pooling, config.doc_pooling):
            pad_right_for_causal_attention(self.tokenizer)
        # long documents as several segment vectors (firstp is plain truncation: one vector, no layer needed)
        if config.segments is not None and config.segments.multi_vector:
            self.segments = Segments(config.segments, self.backbone, self.embedding_dim, config.doc_pooling, config.normalize)

    def _token_id(self, token: str | None, option: str) -> int | None:
        if token is None:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ConfigError(f"{option}='{token}' is not in the tokenizer's vocabulary: pick a token it has, or None.")
        return token_id

    @classmethod
    def default_config(cls, directory: Path) -> BiEncoderConfig:
        found = detect_layout(directory)
        if found is not None:  # e.g. a PyLate ColBERT read as a single-vector model would score silently wrong
            raise ConfigError(f"{directory} is a {found.layout} checkpoint of the '{found.family}' family: load it with "
                              "boltir.models.load_model or that family's class (e.g. ColBERTModule).")
        return sentence_transformers_config(directory) or BiEncoderConfig()

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim or self.backbone.config.hidden_size

    def index_fingerprint(self) -> dict:
        """What decides the meaning of stored document vectors; a searching model must agree on all of it."""
        c = self.config
        return {
            "dim": self.embedding_dim,
            "similarity": c.similarity,
            "doc_pooling": c.doc_pooling,
            "normalize": c.normalize,
            "backbone": self.backbone.config.model_type,
            "segments": self.config.segments.aggregation if self.segments is not None else None,
        }

    def _marked(self, texts: list[str], length: int, prefix: str, marker: int | None) -> dict[str, Tensor]:
        """Tokens of texts, with ``marker`` after the first token (in the room truncation leaves for it)."""
        encoding = self.tokenize(texts, length - (marker is not None), prefix, self.config.append_eos)
        return insert_after_first(encoding, marker) if marker is not None else encoding

    def tokenize_queries(self, queries: list[str]) -> dict[str, Tensor]:
        c = self.config
        return self._marked(queries, c.query_length, c.query_prefix, self.query_marker_id)

    def tokenize_docs(self, docs: list[str]) -> dict[str, Tensor]:
        """Token ids of documents; with multi-vector ``segments``, of their segments plus a ``segment_mask``."""
        c = self.config
        if self.segments is not None:
            s = c.segments
            return split_into_segments(self.tokenizer, docs, c.doc_length, s.max_segments, s.overlap, c.doc_prefix, c.append_eos)
        return self._marked(docs, c.doc_length, c.doc_prefix, self.doc_marker_id)

    def _embed(
        self, backbone: nn.Module, pooling: Pooling, encoding: dict[str, Tensor] | PackedTokens, **backbone_kwargs
    ) -> Tensor:
        if isinstance(encoding, PackedTokens):
            if not self.packable:
                raise ConfigError("packed texts need a tied dense bi-encoder with an encoder backbone that runs "
                                  f"pluggable attention and pooling in {list(PACKED_POOLING)}; pass padded texts.")
            states = run_backbone(backbone, **encoding.inputs, boltir_layout=encoding.layout()).last_hidden_state
            vectors = pooling.packed(states[0], encoding.cu_seqlens)
        else:
            states = run_backbone(backbone, **encoding, **backbone_kwargs).last_hidden_state
            vectors = pooling(states, encoding["attention_mask"])
        if self.projection is not None:
            vectors = self.projection(vectors.to(self.projection.weight.dtype))
        vectors = vectors.float()  # indexes and scores work in float32 whatever precision the backbone ran in
        if self.config.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return vectors

    def encode_queries(self, encoding: dict[str, Tensor] | PackedTokens) -> Tensor:
        """``[batch, dim]`` query vectors from a tokenised batch (padded, or packed where ``packable``)."""
        return self._embed(self.query_backbone or self.backbone, self.query_pooling, encoding)

    def encode_docs(self, encoding: dict[str, Tensor] | PackedTokens) -> Tensor | SegmentedVectors:
        """``[batch, dim]`` document vectors from a tokenised batch (padded, or packed where ``packable``), or
        segment vectors for a segmented one."""
        if not isinstance(encoding, PackedTokens) and "segment_mask" in encoding:
            assert self.segments is not None, "segmented documents need a model with multi-vector segments"
            return self.segments(partial(self._embed, self.backbone, self.doc_pooling), self.backbone, encoding)
        return self._embed(self.backbone, self.doc_pooling, encoding)

    def score(self, query_vectors: Tensor, doc_vectors: Tensor | SegmentedVectors) -> Tensor:
        """``[Q, N]`` similarity of every query to every document (to its best segment, for segment vectors)."""
        if isinstance(doc_vectors, SegmentedVectors):
            docs, width, dim = doc_vectors.vectors.shape
            flat = pairwise_similarity(self.config.similarity, query_vectors, doc_vectors.vectors.reshape(-1, dim))
            return max_over_segments(flat.view(-1, docs, width), doc_vectors.mask)
        return pairwise_similarity(self.config.similarity, query_vectors, doc_vectors)

    def save_into(self, directory: Path) -> None:
        super().save_into(directory)
        if self.query_backbone is not None:
            save_merged(self.query_backbone, directory / "query_encoder")

    def head_state_dict(self) -> dict[str, Tensor]:
        return {k: v for k, v in super().head_state_dict().items() if not k.startswith("query_backbone.")}

    def backbones(self) -> dict[str, nn.Module]:
        return {**super().backbones(), **({"query_backbone": self.query_backbone} if self.query_backbone is not None else {})}

    def load_saved_parts(self, directory: Path) -> None:
        super().load_saved_parts(directory)
        if self.query_backbone is not None and (directory / "query_encoder").is_dir():
            self.query_backbone = self.backbone_class.from_pretrained(directory / "query_encoder")


__all__ = ["PACKED_POOLING", "BiEncoderModel", "sentence_transformers_config"]
