"""Model directories saved by Lightning IR (0.0.6): recognised by their ``config.json``, read into boltir configs.

Lightning IR saves one HF directory per model: ``config.json`` holds the backbone's fields plus its own
(``model_type`` such as ``lir-dpr``, ``col``, ``splade``, ``mono``, ``set-encoder``, and ``backbone_model_type``),
``model.safetensors`` the backbone's weights under the backbone's own names plus the model's heads
(``projection.*``, ``linear.*``, ``bert_pool.*``, ``query_weights.*``), and the tokenizer files name a Lightning IR
tokenizer class with the backbone's class beside it (``backbone_tokenizer_class``).

Everything boltir needs to know about that layout is in the tables below: which boltir family each model type is
(:data:`FAMILIES`), how every config field it reads maps to boltir options (:data:`FIELDS`, with Lightning IR's
defaults for fields an older save left out, :data:`DEFAULTS`), and where each head's weights go
(:data:`HEAD_WEIGHTS`). A field boltir cannot reproduce raises :class:`ConfigError` naming it; none is dropped
silently. Sizes come from the weights where 0.0.6 is known to lose them on save (``embedding_dim``).

A model loaded from such a directory behaves as in Lightning IR, where boltir's own defaults differ by design:
SPLADE without expansion keeps the special tokens' weights (``zero_special_tokens=False``), Lightning IR's ``l2``
similarity is the unsquared distance (boltir ``euclidean``), and lengths are Lightning IR's query/document lengths.
Training choices are not part of a model directory: boltir's losses keep their own defaults (RankNet averaged per
query, InfoNCE over several positives), whatever model they train. Fields that only matter in training (``k_train``)
are read and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import load_file
from torch import Tensor, nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedTokenizerBase

from ..._config_files import read_json_config
from ...errors import ConfigError

# Lightning IR model type → boltir family
FAMILIES = {"lir-dpr": "bi-encoder", "col": "colbert", "splade": "splade", "mono": "cross-encoder",
            "set-encoder": "cross-encoder"}

# Lightning IR 0.0.6's defaults (its config classes' signatures), for fields a saved config.json may leave out
_BI = {"query_length": 32, "doc_length": 512, "similarity_function": "dot", "sparsification_strategy": None,
       "add_marker_tokens": False, "use_adapter": False}
_CROSS = {"query_length": 32, "doc_length": 512, "pooling_strategy": "first", "_bert_pool": False,
          "linear_bias": False, "scoring_strategy": "rank", "tokenizer_pattern": None, "use_adapter": False}
DEFAULTS: dict[str, dict[str, Any]] = {
    "lir-dpr": {**_BI, "pooling_strategy": "mean", "normalize": False, "projection": "linear"},
    "col": {**_BI, "normalization_strategy": None, "projection": "linear", "query_mask_scoring_tokens": None,
            "doc_mask_scoring_tokens": None, "query_aggregation_function": "sum", "doc_aggregation_function": "max",
            "query_expansion": False, "attend_to_query_expanded_tokens": False, "doc_expansion": False, "k_train": None},
    "splade": {**_BI, "sparsification_strategy": "relu_log", "pooling_strategy": "max", "query_weighting": "contextualized",
               "query_expansion": True, "doc_weighting": "contextualized", "doc_expansion": True},
    "mono": _CROSS,
    "set-encoder": {**_CROSS, "depth": 100, "add_extra_token": False, "sample_missing_docs": True},
}


@dataclass
class _Source:
    """What a field's translation may consult besides its value: the whole Lightning IR config and the weights."""

    config: dict[str, Any]
    weights: dict[str, Tensor]

    def length(self, value: int | None) -> int:
        """A Lightning IR length (None: no limit) as a boltir one: at most the backbone's positions."""
        positions = int(self.config.get("max_position_embeddings") or 512)
        return positions if value is None else int(value)


Translate = Callable[[Any, _Source], dict[str, Any]]


def _same(option: str, values: dict[Any, Any] | None = None) -> Translate:
    """The value under boltir's name ``option`` (through ``values`` where the names of choices differ)."""
    return lambda value, _: {option: values[value] if values is not None else value}


def _only(*allowed: Any, why: str = "boltir does not implement it") -> Translate:
    """A field boltir reproduces only at these values; any other raises, naming the field."""
    def check(value: Any, source: _Source) -> dict[str, Any]:
        if value not in allowed:
            raise _Unsupported(f"{value!r} ({why}; supported: {list(allowed)})")
        return {}
    return check


class _Unsupported(Exception):
    pass


def _bi_lengths(_: Any, source: _Source) -> dict[str, Any]:
    c = source.config
    return {"query_length": source.length(c["query_length"]), "doc_length": source.length(c["doc_length"])}


def _cross_lengths(_: Any, source: _Source) -> dict[str, Any]:
    """Query and document cut apart as Lightning IR cuts them, the pair within the backbone's positions."""
    c = source.config
    query, doc = source.length(c["query_length"]), source.length(c["doc_length"])
    max_length = min(query + doc + 4, source.length(None))  # [CLS] q [SEP] d [SEP], and an interaction token
    return {"query_length": min(query, max_length // 2), "doc_length": doc, "max_length": max_length}


def _similarity(value: str, _: _Source) -> dict[str, Any]:
    names = {"dot": "dot", "cosine": "cosine", "l2": "euclidean"}  # Lightning IR's l2: -cdist, unsquared
    if value not in names:
        raise _Unsupported(f"{value!r} (supported: {list(names)})")
    return {"similarity": names[value]}


def _markers(value: bool, _: _Source) -> dict[str, Any]:
    return {"query_marker": "[QUE]", "doc_marker": "[DOC]"} if value else {}


def _projection(value: str | None, source: _Source) -> dict[str, Any]:
    """The projection's size from its weights (0.0.6 drops ``embedding_dim`` on save), its bias from the config."""
    if value is None:
        return {"embedding_dim": None}
    if value not in ("linear", "linear_no_bias"):
        raise _Unsupported(f"{value!r} (supported: ['linear', 'linear_no_bias', None])")
    if "projection.weight" not in source.weights:
        raise _Unsupported(f"{value!r}, but the weights hold no projection.weight")
    return {"embedding_dim": int(source.weights["projection.weight"].shape[0]), "projection_bias": value == "linear"}


def _dpr_pooling(value: str, _: _Source) -> dict[str, Any]:
    if value not in ("first", "mean", "max", "sum"):
        raise _Unsupported(f"{value!r} (supported: first, mean, max, sum)")
    return {"query_pooling": value, "doc_pooling": value}


def _col_similarity(value: str, _: _Source) -> dict[str, Any]:
    if value not in ("dot", "cosine"):
        raise _Unsupported(f"{value!r} (supported: dot, cosine)")
    return {"normalize": True} if value == "cosine" else {}  # cosine of token vectors: dot of normalised ones


def _col_normalization(value: str | None, source: _Source) -> dict[str, Any]:
    if value not in (None, "l2"):
        raise _Unsupported(f"{value!r} (supported: l2, None)")
    return {"normalize": value == "l2" or source.config["similarity_function"] == "cosine"}


def _mask_tokens(side: str) -> Translate:
    def translate(value: Any, _: _Source) -> dict[str, Any]:
        punctuation = value == "punctuation"
        tokens = None if value is None or punctuation else list(value)
        if side == "query":
            return {"query_mask_punctuation": punctuation, "query_mask_tokens": tokens}
        return {"mask_punctuation": punctuation, "doc_mask_tokens": tokens}
    return translate


def _splade_pooling(value: str, _: _Source) -> dict[str, Any]:
    if value not in ("max", "sum"):
        raise _Unsupported(f"{value!r} (supported: max, sum)")
    return {"query_pooling": value, "doc_pooling": value}


def _cross_pooling(value: str, source: _Source) -> dict[str, Any]:
    if source.config.get("_bert_pool"):  # Lightning IR's "bert_pool": dense + tanh over the first token, BERT's pooler
        if "bert_pool.0.weight" not in source.weights:
            raise _Unsupported("'bert_pool', but the weights hold no bert_pool.0.weight")
        return {"pooling": "pooler"}
    if value not in ("first", "mean", "max", "sum"):
        raise _Unsupported(f"{value!r} (supported: first, mean, max, sum, bert_pool)")
    return {"pooling": value}


_BI_FIELDS: dict[str, Translate] = {
    "query_length": _bi_lengths,
    "doc_length": lambda *_: {},
    "similarity_function": _similarity,
    "add_marker_tokens": _markers,
    "use_adapter": _only(False, why="merge the LoRA adapter into the weights first"),
}
_CROSS_FIELDS: dict[str, Translate] = {
    "query_length": _cross_lengths,
    "doc_length": lambda *_: {},
    "pooling_strategy": _cross_pooling,
    "_bert_pool": lambda *_: {},  # read by pooling_strategy
    "linear_bias": lambda *_: {},  # without a bias the head's bias stays 0 (see load_weights)
    # "mono": two logits, the score log_softmax(logits)[:, 1] = log sigmoid(logit difference), the head holding it
    "scoring_strategy": _same("relevance_log_prob", {"rank": False, "mono": True}),
    "tokenizer_pattern": _only(None),
    "use_adapter": _BI_FIELDS["use_adapter"],
}
# Lightning IR config field → its boltir options, per model type: every field these models read at inference
FIELDS: dict[str, dict[str, Translate]] = {
    "lir-dpr": {
        **_BI_FIELDS,
        "pooling_strategy": _dpr_pooling,  # DprConfig also saves query/doc_pooling_strategy, which 0.0.6 never reads
        "normalize": _same("normalize"),
        "projection": _projection,
        "sparsification_strategy": _only(None),
    },
    "col": {
        **_BI_FIELDS,
        "similarity_function": _col_similarity,
        "normalization_strategy": _col_normalization,
        "projection": _projection,
        "sparsification_strategy": _only(None),
        "query_expansion": _same("query_augmentation"),
        "attend_to_query_expanded_tokens": _same("attend_to_mask_tokens"),
        "doc_expansion": _only(False),
        "query_mask_scoring_tokens": _mask_tokens("query"),
        "doc_mask_scoring_tokens": _mask_tokens("doc"),
        "query_aggregation_function": _same("query_aggregation"),
        "doc_aggregation_function": _same("doc_aggregation"),
        "k_train": lambda *_: {},  # XTR's in-batch token retrieval: training only, scores do not use it
    },
    "splade": {
        **_BI_FIELDS,
        "similarity_function": _only("dot"),
        "sparsification_strategy": _only("relu_log"),
        "pooling_strategy": _splade_pooling,
        "query_weighting": _same("query_weighting", {"contextualized": "contextualized", "static": "static"}),
        "query_expansion": _same("query_expansion"),
        "doc_weighting": _only("contextualized"),
        "doc_expansion": _same("doc_expansion"),
    },
    "mono": _CROSS_FIELDS,
    "set-encoder": {
        **_CROSS_FIELDS,
        "add_extra_token": lambda value, _: {"interaction_token": "[INT]"} if value else {},
        # lists shorter than depth see interaction states drawn at random (sample_missing_docs), as there
        "depth": lambda value, source: {"set_depth": value} if source.config["sample_missing_docs"] else {},
        "sample_missing_docs": lambda *_: {},  # read by depth
    },
}
# options that hold for every directory of a model type, whatever its fields say
FIXED: dict[str, dict[str, Any]] = {
    "lir-dpr": {},
    "col": {"mask_special_tokens": False, "normalize": False},
    "splade": {"zero_special_tokens": False},
    "mono": {"attention": "full"},
    "set-encoder": {"attention": "set"},
}

# where a head's weights go: Lightning IR name prefix → boltir name prefix ({backbone}: the backbone's body)
_MLM_HEADS = {"bert": "backbone.cls.", "distilbert": "backbone."}
HEAD_WEIGHTS: dict[str, dict[str, str]] = {
    "lir-dpr": {"projection.": "projection."},
    "col": {"projection.": "projection."},
    "splade": {"projection.": "{mlm_head}", "query_weights.weight": "query_weights"},
    "mono": {"linear.": "head.", "bert_pool.0.": "{backbone}pooler.dense."},
    "set-encoder": {"linear.": "head.", "bert_pool.0.": "{backbone}pooler.dense."},
}
# boltir weights a Lightning IR directory need not hold: poolers it has no use for, tied decoders, a head's absent bias
_MAY_BE_MISSING = ("pooler.", "decoder.weight", "decoder.bias", "position_ids")


def read_config(directory: str | Path) -> dict[str, Any] | None:
    """The directory's ``config.json`` if Lightning IR saved it (a known model type with a backbone type), else None."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        return None
    values = read_json_config(path)
    if values.get("model_type") in FAMILIES and values.get("backbone_model_type"):
        return values
    return None


def family(directory: str | Path) -> str | None:
    """The boltir family of a Lightning IR directory, or None for any other directory."""
    values = read_config(directory)
    return FAMILIES[values["model_type"]] if values is not None else None


def boltir_options(directory: str | Path) -> dict[str, Any]:
    """The boltir config options (a family config's ``from_dict`` input) of a Lightning IR directory."""
    directory = Path(directory)
    values = read_config(directory)
    if values is None:
        raise ConfigError(f"{directory}/config.json is not a Lightning IR model config.")
    model_type = values["model_type"]
    values = {**DEFAULTS[model_type], **values}
    source = _Source(values, _weights(directory))
    options: dict[str, Any] = dict(FIXED[model_type])
    for field, translate in FIELDS[model_type].items():
        try:
            options.update(translate(values[field], source))
        except _Unsupported as exc:
            raise ConfigError(f"{directory}/config.json: Lightning IR's {field}={exc}.") from None
    return options


def backbone_config(directory: str | Path) -> PretrainedConfig:
    """The backbone's HF config: the same ``config.json`` read as its ``backbone_model_type``."""
    values = dict(read_config(directory) or {})
    kind = values.pop("backbone_model_type")
    for field in ("model_type", "architectures", "dtype", "torch_dtype", *DEFAULTS[values["model_type"]],
                  "adapter_config", "pretrained_adapter_name_or_path", "transformers_version"):
        values.pop(field, None)
    values = {k: v for k, v in values.items() if k not in _ALL_FIELDS}
    return AutoConfig.for_model(kind, **values)


_ALL_FIELDS = {field for fields in FIELDS.values() for field in fields} | {
    "query_pooling_strategy", "doc_pooling_strategy", "sparsification", "embedding_dim", "save_step"}


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer, through the backbone's tokenizer class (the saved ``tokenizer_class`` is Lightning IR's own);
    Lightning IR's added tokens ([QUE], [DOC], [INT]) come with its files."""
    directory = Path(directory)
    path = directory / "tokenizer_config.json"
    name = read_json_config(path).get("backbone_tokenizer_class") if path.is_file() else None
    tokenizer_class = getattr(transformers, name, None) if name else None
    if tokenizer_class is None:
        raise ConfigError(f"{path} names no backbone_tokenizer_class transformers has ({name!r}): save the tokenizer "
                          "with Lightning IR 0.0.6, or put the backbone's tokenizer files in the directory.")
    return tokenizer_class.from_pretrained(directory)


def load_weights(model: nn.Module, directory: str | Path) -> None:
    """Copy a Lightning IR directory's weights into ``model`` (a boltir model built from its translated config)."""
    directory = Path(directory)
    values = read_config(directory) or {}
    model_type = values["model_type"]
    backbone = model.backbone  # type: ignore[attr-defined]
    body = "backbone." if backbone.base_model is backbone else f"backbone.{backbone.base_model_prefix}."
    heads = {k: v.format(backbone=body, mlm_head=_MLM_HEADS.get(values["backbone_model_type"], "backbone."))
             for k, v in HEAD_WEIGHTS[model_type].items()}
    state = {}
    for name, tensor in _weights(directory).items():
        target = next((heads[p] + name[len(p):] for p in heads if name.startswith(p)), body + name)
        state[target] = tensor.float().view(-1) if target == "query_weights" else tensor.float()
    if model_type in ("mono", "set-encoder"):
        state.update(_one_logit_head(state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.startswith(("backbone.", "head.", "projection.", "query_weights"))
               and not any(part in k for part in _MAY_BE_MISSING)]
    if missing or unexpected:
        raise ConfigError(f"{directory}/model.safetensors does not fit its config.json: missing {missing[:4]}, "
                          f"unexpected {unexpected[:4]}.")


def _one_logit_head(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Lightning IR's head as boltir's one-logit head: a two-logit ("mono") head as logit(relevant) - logit(not
    relevant), whose log sigmoid is its log_softmax; a zero bias where it has none (``linear_bias=False``)."""
    weight = state["head.weight"]
    bias = state.get("head.bias", torch.zeros(weight.shape[0]))
    if weight.shape[0] == 2:
        weight, bias = weight[1:] - weight[:1], bias[1:] - bias[:1]
    return {"head.weight": weight, "head.bias": bias}


def _weights(directory: Path) -> dict[str, Tensor]:
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{directory} holds no *.safetensors weights: save the model with Lightning IR 0.0.6.")
    state: dict[str, Tensor] = {}
    for path in files:
        state.update(load_file(str(path)))
    return state


__all__ = ["DEFAULTS", "FAMILIES", "FIELDS", "HEAD_WEIGHTS", "backbone_config", "boltir_options", "family",
           "load_tokenizer", "load_weights", "read_config"]
