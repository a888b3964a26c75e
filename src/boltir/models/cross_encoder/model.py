"""The cross-encoder model: a query-document pair in one sequence → backbone → pooling → linear head → score.

Three attention patterns share this one model (see :class:`CrossEncoderConfig`): full attention on packed pairs,
the sparse pattern on a ``[query segment | document segment]`` layout, and the Set-Encoder's inter-passage
attention over whole candidate lists; seq2seq backbones (T5) score monoT5-style instead of through a head.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ...data.batches import pin_encoding
from ...errors import ConfigError, ModelNotFoundError
from ..foreign.base import checkpoint_tensors
from ..layers import Pooling, pad_right_for_causal_attention
from ..layers.attention import (SetLayout, WindowedLayout, draw_missing_interactions, try_boltir_attention,
                                use_boltir_attention)
from ..layers.lora import apply_lora
from ..layers.packing import PackedTokens
from ..layers.tokenize import insert_after_first, tokenize_pairs
from ..model import BoltirModel, freeze_pooler, is_decoder, read_json, run_backbone
from ..resolve import resolve_model_dir
from .config import CrossEncoderConfig

log = logging.getLogger(__name__)

# sequence-classification checkpoints whose head is ``classifier(pooler_output)``; their weights become our head
_POOLER_CLASSIFIERS = ("BertForSequenceClassification",)
# poolings of packed pairs: their first token (through the backbone's pooler too) or the mean of their tokens
PACKED_POOLING = ("cls", "first", "mean", "pooler")


@dataclass
class PairBatch:
    """Tokenised query-document pairs plus what the attention pattern needs to lay them out."""

    inputs: dict[str, Tensor]
    query_tokens: int | None = None  # sparse: length of the query segment at the front of every row
    list_sizes: list[int] | None = None  # set: consecutive pairs forming one candidate list

    def to(self, device: torch.device | str) -> PairBatch:
        inputs = {k: v.to(device, non_blocking=True) for k, v in self.inputs.items()}
        return PairBatch(inputs, self.query_tokens, self.list_sizes)

    def pin_memory(self) -> PairBatch:
        """Page-locked copies, so the copy to a GPU overlaps its work (``to`` does not wait for it)."""
        return PairBatch(pin_encoding(self.inputs), self.query_tokens, self.list_sizes)

    def __len__(self) -> int:
        return int(self.inputs["input_ids"].shape[0])

    def by_length(self, size: int, left: bool) -> list[tuple[Tensor, PairBatch]]:
        """This batch's rows in batches of ``size``, longest first, each cut to its own longest row (padded on the
        left with ``left``): (the rows' positions here, the batch). Sparse and Set-Encoder layouts stay whole."""
        if self.query_tokens is not None or self.list_sizes is not None:
            return [(torch.arange(len(self)), self)]
        mask = self.inputs["attention_mask"]
        lengths = mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        width = mask.shape[1]
        pieces = []
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            keep = int(lengths[rows].max()) if len(rows) else 0
            columns = slice(width - keep, width) if left else slice(0, keep)
            inputs = {k: v[rows][:, columns] if v.dim() == 2 and v.shape[1] == width else v[rows]
                      for k, v in self.inputs.items()}
            pieces.append((rows, PairBatch(inputs)))
        return pieces


def truncate_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str], limits: list[int]) -> list[str]:
    """Cut each text after its first ``limit`` tokens, at the end of the last kept token's characters."""
    texts = list(texts)
    for _ in range(3):  # re-tokenising a cut text can, rarely, split its last word into one token more
        longest = max(limits, default=0) + 1
        encoding = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max(longest, 1),
                             return_offsets_mapping=True)
        changed = False
        for i, (offsets, limit) in enumerate(zip(encoding["offset_mapping"], limits)):
            if len(offsets) > limit:
                texts[i] = texts[i][: offsets[limit - 1][1]] if limit > 0 else ""
                changed = True
        if not changed:
            break
    return texts


def _backbone_class(hf_config: Any) -> Any:
    return AutoModelForSeq2SeqLM if getattr(hf_config, "is_encoder_decoder", False) else AutoModel


class CrossEncoderModel(BoltirModel[CrossEncoderConfig]):
    """Scores query-document pairs (or whole candidate lists, for the Set-Encoder) with one backbone."""

    config_class: ClassVar[type[CrossEncoderConfig]] = CrossEncoderConfig

    def __init__(self, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: CrossEncoderConfig) -> None:
        super().__init__(backbone, tokenizer, config)
        hf = backbone.config
        self.seq2seq = bool(getattr(hf, "is_encoder_decoder", False))
        decoder = is_decoder(hf)
        if config.attention != "full" and (self.seq2seq or decoder):
            raise ConfigError(f"attention='{config.attention}' needs a bidirectional encoder backbone (BERT-style), "
                              f"not {type(backbone).__name__}; use attention='full'.")
        limit = getattr(hf, "max_position_embeddings", None)
        if limit is not None and not self.seq2seq and config.max_length > limit:
            raise ConfigError(f"max_length={config.max_length} exceeds the backbone's {limit} positions; lower max_length.")
        self.pooling: Pooling | None = None
        self.head: nn.Linear | None = None
        # full attention goes through boltir's attention too where the backbone takes it (unchanged without a
        # layout): then pairs can also run packed, without padding (see pack)
        self.packable = (config.attention == "full" and not self.seq2seq and not decoder
                         and config.pooling in PACKED_POOLING
                         and (config.pooling != "pooler" or getattr(backbone, "pooler", None) is not None)
                         and try_boltir_attention(backbone))
        if self.seq2seq:
            self.token_ids = (self._single_token(config.false_token), self._single_token(config.true_token))
        else:
            self.pooling = None if config.pooling == "pooler" else Pooling(config.pooling)
            if self.pooling is not None:
                freeze_pooler(backbone)
            self.head = nn.Linear(hf.hidden_size, 1)
            if decoder:
                pad_right_for_causal_attention(tokenizer)
        if config.attention != "full":
            use_boltir_attention(backbone)
        if config.set_depth is not None:
            layers = [m for m in backbone.modules() if all(hasattr(m, a) for a in ("key", "value", "num_attention_heads"))]
            if not layers:
                raise ConfigError(f"set_depth needs BERT-style self-attention layers (key, value), which "
                                  f"{type(backbone).__name__} lacks; set set_depth=None.")
            for layer in layers:
                layer.register_forward_pre_hook(draw_missing_interactions, with_kwargs=True)
        self.interaction_token_id = None
        if config.interaction_token is not None:
            self.interaction_token_id = tokenizer.convert_tokens_to_ids(config.interaction_token)
            if self.interaction_token_id is None or self.interaction_token_id == tokenizer.unk_token_id:
                raise ConfigError(f"interaction_token='{config.interaction_token}' is not in the tokenizer's vocabulary: "
                                  "add it to the tokenizer, or set interaction_token=None.")
        if config.lora_r:  # adapters last: the pooler, head and attention pattern above read the plain backbone
            self.backbone = apply_lora(backbone, config.lora_r, config.lora_alpha, config.lora_target_modules,
                                       config.lora_dropout)

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ConfigError(f"'{text}' is {len(ids)} tokens for this tokenizer; set true_token/false_token to single tokens.")
        return int(ids[0])

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def default_config(cls, directory: Path) -> CrossEncoderConfig:
        """Plain HF folders: a BERT sequence-classifier keeps its pooler (and, with two labels, scores log p(relevant)
        as castorini's monoBERT); limits follow the tokenizer."""
        hf = read_json(directory / "config.json")
        classifier = any(a in _POOLER_CLASSIFIERS for a in hf.get("architectures") or [])
        head = checkpoint_tensors(directory, ("classifier.weight",)).get("classifier.weight") if classifier else None
        max_length = int(read_json(directory / "tokenizer_config.json").get("model_max_length") or 512)
        max_length = min(max_length, int(hf.get("max_position_embeddings") or 512), 512)
        return CrossEncoderConfig(pooling="pooler" if classifier else "cls", max_length=max_length,
                                  relevance_log_prob=head is not None and head.shape[0] == 2)

    @classmethod
    def load_backbone(cls, directory: Path, config: CrossEncoderConfig) -> PreTrainedModel:
        """An encoder (or decoder) body, or a whole seq2seq LM for monoT5-style scoring."""
        if not (directory / "config.json").is_file():
            raise ModelNotFoundError(f"{directory} holds no config.json: pass a directory of HF model files.")
        hf_config = AutoConfig.from_pretrained(directory)
        if any(a.endswith("ForSequenceClassification") for a in getattr(hf_config, "architectures", None) or []):
            # loaded whole, so its head is an expected part of the checkpoint (no "UNEXPECTED" load report);
            # load_classifier then takes the head's weights over as this model's head
            return AutoModelForSequenceClassification.from_pretrained(directory).base_model
        return _backbone_class(hf_config).from_pretrained(directory)

    @classmethod
    def from_backbone_config(cls, backbone_config: Any, tokenizer: PreTrainedTokenizerBase, config: CrossEncoderConfig):
        return cls(_backbone_class(backbone_config).from_config(backbone_config), tokenizer, config)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], config: Any = None, backend: str = "auto",
                        **overrides: Any) -> CrossEncoderModel:
        """Load a saved boltir cross-encoder, an HF/sentence-transformers cross-encoder, or a plain backbone."""
        model = super().from_pretrained(name_or_path, config=config, backend=backend, **overrides)
        directory = resolve_model_dir(name_or_path)
        if not (directory / "boltir_config.json").is_file() and model.head is not None:
            model.load_classifier(directory)
        return model

    def load_classifier(self, directory: Path) -> bool:
        """Reuse a BERT sequence-classification head (over the pooler) as this model's head; True if one was found."""
        architectures = read_json(directory / "config.json").get("architectures") or []
        if not any(a.endswith("ForSequenceClassification") for a in architectures):
            return False
        if not any(a in _POOLER_CLASSIFIERS for a in architectures):
            log.warning("%s: the classifier head of %s is not reused (only %s heads are); a new head is initialised.",
                        directory, architectures, list(_POOLER_CLASSIFIERS))
            return False
        tensors = checkpoint_tensors(directory, ("classifier.weight", "classifier.bias"))
        if len(tensors) != 2 or tensors["classifier.weight"].shape[0] not in (1, 2):
            log.warning("%s: no 1- or 2-label classifier weights found; a new head is initialised.", directory)
            return False
        weight, bias = tensors["classifier.weight"].float(), tensors["classifier.bias"].float()
        if weight.shape[0] == 2:  # two labels: logit(relevant) - logit(not relevant), log p(relevant) after log sigmoid
            weight, bias = weight[1:] - weight[:1], bias[1:] - bias[:1]
        assert self.head is not None
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)
        if self.config.pooling != "pooler":
            log.warning("%s: the reused classifier was trained on the pooler output, but pooling='%s'.",
                        directory, self.config.pooling)
        return True

    # -- tokenizing --------------------------------------------------------------------------------
    def tokenize_pairs(
        self, queries: list[str], docs: list[str], list_sizes: list[int] | None = None, cache: dict[str, Any] | None = None
    ) -> PairBatch:
        """Tokenise pairs under the truncation policy and lay them out for the attention pattern.

        ``list_sizes`` (Set-Encoder) says how many consecutive pairs form each query's candidate list; ``cache``
        keeps each text's tokens for the next batches of the same re-ranking (see ``layers.tokenize_pairs``).
        """
        if len(queries) != len(docs):
            raise ConfigError(f"got {len(queries)} queries but {len(docs)} documents to pair.")
        c = self.config
        unique = list(dict.fromkeys(queries))  # re-ranking repeats each query once per candidate: cut each once
        cut = dict(zip(unique, truncate_texts(self.tokenizer, unique, [c.query_length] * len(unique))))
        queries = [cut[q] for q in queries]
        if c.doc_length is not None:
            docs = truncate_texts(self.tokenizer, docs, [c.doc_length] * len(docs))
        if self.seq2seq:
            return PairBatch(self._tokenize_seq2seq(queries, docs))
        # the document fills what the (cut) query leaves of max_length, cut at its token limit in Rust
        room = c.max_length - (self.interaction_token_id is not None)  # the interaction token goes in after tokenising
        inputs = tokenize_pairs(self.tokenizer, queries, docs, room, doc_starts=c.attention == "sparse", cache=cache)
        if c.attention == "sparse":
            return self._segmented(inputs)
        if c.attention == "set":
            sizes = list_sizes if list_sizes is not None else [len(queries)]
            if sum(sizes) != len(queries) or any(s < 1 for s in sizes):
                raise ConfigError(f"list sizes {sizes} do not split {len(queries)} pairs into non-empty lists.")
            if self.interaction_token_id is not None:
                inputs = insert_after_first(inputs, self.interaction_token_id)
            return PairBatch(inputs, list_sizes=list(sizes))
        return PairBatch(inputs)

    def _tokenize_seq2seq(self, queries: list[str], docs: list[str]) -> dict[str, Tensor]:
        c = self.config
        empty = [c.seq2seq_template.format(query=q, doc="") for q in queries]
        used = [len(ids) for ids in self.tokenizer(empty)["input_ids"]]
        docs = truncate_texts(self.tokenizer, docs, [max(c.max_length - n, 1) for n in used])
        texts = [c.seq2seq_template.format(query=q, doc=d) for q, d in zip(queries, docs)]
        encoding = self.tokenizer(texts, padding=True, truncation=True, max_length=c.max_length, return_tensors="pt")
        return {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask")}

    def _segmented(self, inputs: dict[str, Tensor]) -> PairBatch:
        """Move packed pairs into ``[query segment | document segment]`` rows, keeping each token's position."""
        lengths = inputs["attention_mask"].sum(1)
        boundary = inputs.pop("doc_start")
        p, d = int(boundary.max()), int((lengths - boundary).max())
        slots = torch.arange(p + d)[None, :]
        source = torch.where(slots < p, slots, boundary[:, None] + slots - p)
        real = torch.where(slots < p, slots < boundary[:, None], source < lengths[:, None])
        source = source.clamp(max=inputs["input_ids"].shape[1] - 1)
        pad_id = self.tokenizer.pad_token_id or 0
        out = {"input_ids": inputs["input_ids"].gather(1, source).masked_fill(~real, pad_id),
               "attention_mask": real.long(),
               "position_ids": source.masked_fill(~real, 0) + self._position_offset()}
        if "token_type_ids" in inputs:
            out["token_type_ids"] = inputs["token_type_ids"].gather(1, source).masked_fill(~real, 0)
        return PairBatch(out, query_tokens=p)

    # -- scoring -----------------------------------------------------------------------------------
    def forward(self, batch: PairBatch | PackedTokens) -> Tensor:
        """One score per pair, ``[pairs]``; pairs come padded (:meth:`tokenize_pairs`) or packed (:meth:`pack`)."""
        if isinstance(batch, PackedTokens):
            if not self.packable:
                raise ConfigError("packed pairs need attention='full', an encoder backbone that runs pluggable "
                                  f"attention and pooling in {list(PACKED_POOLING)}; pass padded pairs.")
            output = run_backbone(self.backbone, **batch.inputs, boltir_layout=batch.layout())
            return self._head(self._pool_packed(output.last_hidden_state[0], batch.cu_seqlens))
        if self.seq2seq:
            return self._seq2seq_scores(batch.inputs)
        inputs = batch.inputs
        kwargs: dict[str, Any] = {}
        if self.config.attention == "sparse":
            if batch.query_tokens is None:
                raise ConfigError("sparse attention needs pairs from tokenize_pairs (a segmented layout).")
            c = self.config
            kwargs["boltir_layout"] = WindowedLayout(inputs["attention_mask"].bool(), batch.query_tokens, c.window,
                                                     c.query_sees_doc)
        elif self.config.attention == "set":
            sizes = batch.list_sizes if batch.list_sizes is not None else [len(batch)]
            kwargs["boltir_layout"] = SetLayout.from_list_sizes(inputs["attention_mask"].bool(), sizes,
                                                                int(self.interaction_token_id is not None),
                                                                self.config.set_depth)
        # a layout holds the padding itself: transformers then need not build a mask it would ignore
        given = {k: v for k, v in inputs.items() if k != "attention_mask"} if kwargs else inputs
        output = run_backbone(self.backbone, **given, **kwargs)
        if self.pooling is None:
            if getattr(output, "pooler_output", None) is None:
                raise ConfigError(f"{type(self.backbone).__name__} has no pooler: choose pooling='cls' (or mean, ...).")
            vectors = output.pooler_output
        else:
            vectors = self.pooling(output.last_hidden_state, inputs["attention_mask"])
        return self._head(vectors)

    def _pool_packed(self, states: Tensor, cu_seqlens: Tensor) -> Tensor:
        """One vector per pair of packed ``[tokens, dim]`` states."""
        if self.pooling is None:  # the backbone's pooler reads position 0 of each row: one row per pair
            return self.backbone.pooler(states[cu_seqlens[:-1].long()].unsqueeze(1))
        return self.pooling.packed(states, cu_seqlens)

    def _head(self, vectors: Tensor) -> Tensor:
        assert self.head is not None
        # the head in float32 whatever the precision: bf16 scores (8 bits of mantissa) would tie candidates
        with torch.autocast(vectors.device.type, enabled=False):
            scores = nn.functional.linear(vectors.float(), self.head.weight.float(), self.head.bias.float()).squeeze(-1)
        return nn.functional.logsigmoid(scores) if self.config.relevance_log_prob else scores

    def _seq2seq_scores(self, inputs: dict[str, Tensor]) -> Tensor:
        """monoT5: log p("true") against "false" at the first decoder step."""
        start = self.backbone.config.decoder_start_token_id or 0
        decoder_ids = torch.full((inputs["input_ids"].shape[0], 1), start, device=inputs["input_ids"].device)
        logits = run_backbone(self.backbone, **inputs, decoder_input_ids=decoder_ids).logits[:, 0, list(self.token_ids)]
        return logits.float().log_softmax(-1)[:, 1]


__all__ = ["PACKED_POOLING", "CrossEncoderModel", "PairBatch", "truncate_texts"]
