"""ColBERT checkpoints of Stanford ColBERT (stanford-futuredata/ColBERT) and PyLate (lightonai/pylate).

Both score by MaxSim over L2-normalised token vectors; query and document markers go after the first token, a
query is cut to ``length - 1`` tokens before its marker goes in and padded with [MASK] to its full length (every
[MASK] scores; the other tokens do not attend to them unless asked), and punctuation tokens of documents get no
vector. Those are the options of :class:`~boltir.models.ColBERTConfig`, so a reader only maps field names:

- Stanford ColBERT: an HF directory (``config.json`` names ``HF_ColBERT``) whose one state dict holds the
  encoder under its base-model prefix and the projection as ``linear.weight`` (no bias), with the checkpoint's
  ColBERTConfig in ``artifact.metadata`` (``dim``, ``query_maxlen``, ``doc_maxlen``, ``query_token_id``,
  ``doc_token_id``, ``mask_punctuation``, ``attend_to_mask_tokens``, ``similarity``, ``interaction``).
- PyLate: a sentence-transformers directory, the Transformer at its root followed by ``Dense`` projections
  (each ``linear.weight`` / ``linear.bias``, identity activation), and its settings in
  ``config_sentence_transformers.json`` (``query_prefix`` / ``document_prefix`` are marker *tokens*,
  ``query_length``, ``document_length``, ``do_query_expansion``, ``attend_to_expansion_tokens``,
  ``skiplist_words``).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from torch import Tensor

from ...errors import ConfigError
from .base import ForeignCheckpoint, checkpoint_tensors, read_json

# Stanford ColBERT's defaults (colbert/infra/config/settings.py) for fields a checkpoint's metadata leaves out
STANFORD_DEFAULTS = {"query_maxlen": 32, "doc_maxlen": 220, "query_token_id": "[unused0]", "doc_token_id": "[unused1]",
                     "mask_punctuation": True, "attend_to_mask_tokens": False}
# PyLate's defaults (pylate/models/colbert.py) for fields its config leaves out
PYLATE_DEFAULTS = {"query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 32, "document_length": 180,
                   "do_query_expansion": True, "attend_to_expansion_tokens": False}


def read_stanford_colbert(directory: Path) -> ForeignCheckpoint | None:
    """A Stanford ColBERT checkpoint directory as boltir ColBERT options and projection, or None if it is not one."""
    architectures = (read_json(directory / "config.json") or {}).get("architectures") or []
    metadata_path = directory / "artifact.metadata"
    if "HF_ColBERT" not in architectures and not metadata_path.is_file():
        return None
    metadata = read_json(metadata_path) or {}
    metadata = metadata.get("config", metadata)  # some exports nest the config
    for option, supported in (("similarity", "cosine"), ("interaction", "colbert")):
        if metadata.get(option, supported) != supported:
            raise ConfigError(f"{metadata_path}: {option}='{metadata[option]}' is not supported; boltir scores Stanford "
                              f"ColBERT checkpoints with {option}='{supported}' only.")
    weight = checkpoint_tensors(directory, ("linear.weight",)).get("linear.weight")
    if weight is None:
        raise ConfigError(f"{directory}: a Stanford ColBERT checkpoint without the 'linear.weight' projection; "
                          "pass the checkpoint directory that ColBERT's save() wrote.")
    dim = metadata.get("dim")
    if dim is not None and int(dim) != weight.shape[0]:
        raise ConfigError(f"{metadata_path}: dim={dim} but linear.weight projects to {weight.shape[0]}; fix 'dim'.")
    settings = {**STANFORD_DEFAULTS, **{k: v for k, v in metadata.items() if k in STANFORD_DEFAULTS and v is not None}}
    options = {
        "embedding_dim": int(weight.shape[0]),
        "query_length": int(settings["query_maxlen"]),
        "doc_length": int(settings["doc_maxlen"]),
        "query_marker": settings["query_token_id"],
        "doc_marker": settings["doc_token_id"],
        "query_augmentation": True,
        "attend_to_mask_tokens": bool(settings["attend_to_mask_tokens"]),
        "mask_punctuation": bool(settings["mask_punctuation"]),
        "normalize": True,
    }
    return ForeignCheckpoint("stanford-colbert", "colbert", options, {"projection.weight": weight.float()})


def _is_pylate(modules: list[dict[str, Any]], settings: dict[str, Any]) -> bool:
    types = [str(m.get("type", "")) for m in modules]
    return (any(t.startswith("pylate.") for t in types) or settings.get("model_type") == "ColBERT"
            or ("query_length" in settings and "document_length" in settings))


def _pylate_projection(directory: Path, modules: list[dict[str, Any]]) -> tuple[Tensor, Tensor | None]:
    """The Dense modules after the Transformer folded into one linear map (they are linear: identity activations)."""
    weight: Tensor | None = None
    bias: Tensor | None = None
    for module in modules:
        path = directory / str(module.get("path", ""))
        settings = read_json(path / "config.json") or {}
        activation = str(settings.get("activation_function", "torch.nn.modules.linear.Identity"))
        if not activation.endswith("Identity") or settings.get("use_residual"):
            raise ConfigError(f"{path / 'config.json'}: a Dense module with activation '{activation}' or a residual "
                              "is not supported; boltir loads PyLate projections that are linear.")
        tensors = checkpoint_tensors(path, ("linear.weight", "linear.bias"))
        if "linear.weight" not in tensors:
            raise ConfigError(f"{path}: no 'linear.weight' in this Dense module's weights.")
        w, b = tensors["linear.weight"].double(), tensors.get("linear.bias")
        if weight is not None and w.shape[1] != weight.shape[0]:
            raise ConfigError(f"{path}: takes {w.shape[1]} features, but the module before it gives {weight.shape[0]}.")
        bias = None if bias is None else w @ bias
        if b is not None:
            bias = b.double() if bias is None else bias + b.double()
        weight = w if weight is None else w @ weight
    assert weight is not None
    return weight.float(), None if bias is None else bias.float()


def read_pylate(directory: Path) -> ForeignCheckpoint | None:
    """A PyLate ColBERT directory as boltir ColBERT options and projection, or None if it is not one."""
    modules = read_json(directory / "modules.json")
    settings_path = directory / "config_sentence_transformers.json"
    settings = read_json(settings_path) or {}
    if not isinstance(modules, list) or not _is_pylate(modules, settings):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or str(modules[0].get("path", "")) != "" or set(kinds[1:]) - {"Dense"} or len(kinds) < 2:
        raise ConfigError(f"{directory / 'modules.json'}: modules {kinds} are not supported; boltir loads PyLate models "
                          "made of the Transformer at the directory's root followed by Dense projections.")
    weight, bias = _pylate_projection(directory, modules[1:])
    values = {**PYLATE_DEFAULTS, **{k: v for k, v in settings.items() if k in PYLATE_DEFAULTS and v is not None}}
    skiplist = settings.get("skiplist_words")
    if skiplist is None or set(skiplist) == set(string.punctuation):
        mask_punctuation = True
    elif not skiplist:
        mask_punctuation = False
    else:
        raise ConfigError(f"{settings_path}: skiplist_words {skiplist[:6]}... is not supported; boltir masks all of "
                          "string.punctuation in documents, or nothing (an empty list).")
    prompts = settings.get("prompts") or {}
    prompt = prompts.get(settings.get("default_prompt_name") or "", "")  # PyLate puts the default prompt before every text
    expansion = bool(values["do_query_expansion"])
    options = {
        "embedding_dim": int(weight.shape[0]),
        "projection_bias": bias is not None,
        "query_length": int(values["query_length"]),
        "doc_length": int(values["document_length"]),
        "query_marker": values["query_prefix"] or None,
        "doc_marker": values["document_prefix"] or None,
        "query_prefix": prompt,
        "doc_prefix": prompt,
        "query_augmentation": expansion,
        "attend_to_mask_tokens": expansion and bool(values["attend_to_expansion_tokens"]),
        "mask_punctuation": mask_punctuation,
        "normalize": True,
    }
    heads = {"projection.weight": weight} | ({"projection.bias": bias} if bias is not None else {})
    return ForeignCheckpoint("pylate", "colbert", options, heads)


__all__ = ["read_pylate", "read_stanford_colbert"]
