"""The model card (``README.md``) that ``save_pretrained`` writes beside a model, in the Hugging Face Hub's format.

YAML front matter through ``huggingface_hub``'s card data (library, family tags, base model, pipeline tag, licence,
datasets and validation metrics of a fit), a body saying what the model is and how it was trained, and a snippet
that loads and scores with it. Only boltir's own card (marked by :data:`CARD_MARK`) is ever rewritten: a card a user
wrote, or edited and unmarked, stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_load

CARD_NAME = "README.md"
CARD_MARK = "<!-- boltir model card: rewritten on every save; delete this line to keep your own edits -->"
# the snippet's first line, which push_to_hub points at the repository
MODEL_LINE = re.compile(r'^model_id = ".*"$', re.MULTILINE)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# per family: the module class that loads it, the Hub's pipeline tag, and tags saying what it is
_FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bi-encoder": ("BiEncoderModule", "sentence-similarity", ("dense-retrieval", "bi-encoder")),
    "splade": ("SpladeModule", "feature-extraction", ("sparse-retrieval", "splade", "bi-encoder")),
    "colbert": ("ColBERTModule", "sentence-similarity", ("multi-vector-retrieval", "colbert", "bi-encoder")),
    "cross-encoder": ("CrossEncoderModule", "text-ranking", ("reranking", "cross-encoder")),
    "light-retriever": ("LightRetrieverModule", "feature-extraction", ("dense-retrieval", "light-retriever")),
}


@dataclass
class TrainingSummary:
    """How a model was fitted, as the module's Trainer knew it when the model was saved."""

    steps: int
    epochs: int
    losses: list[str]
    datasets: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # validation measures, e.g. {"nDCG@10": 0.71}
    validation_datasets: list[str] = field(default_factory=list)
    precision: str | None = None


def is_boltir_card(path: Path) -> bool:
    return path.is_file() and CARD_MARK in path.read_text(encoding="utf-8", errors="replace")


def _base_model(model: Any, source: Path | None) -> str | None:
    """The Hub id the model started from: its name when it was loaded by one, or the source card's base model."""
    name = str(getattr(model, "name_or_path", "") or "")
    if _HUB_ID.match(name) and not Path(name).exists():
        return name
    if source is not None and (source / CARD_NAME).is_file():
        base = metadata_load(source / CARD_NAME) or {}
        if base.get("library_name") == "boltir" and base.get("base_model"):
            return str(base["base_model"])
    return None


def _license(source: Path | None) -> str | None:
    if source is None or not (source / CARD_NAME).is_file():
        return None
    value = (metadata_load(source / CARD_NAME) or {}).get("license")
    return str(value) if value else None


def _measure_key(measure: str) -> str:
    """ir-measures names as Hub metric types: ``nDCG@10`` → ``ndcg_at_10``."""
    return re.sub(r"[^a-z0-9]+", "_", measure.lower().replace("@", "_at_")).strip("_")


def _description(model: Any, family: str) -> list[str]:
    backbone = model.backbone.config
    config = model.config.to_dict()
    shape = f"{getattr(backbone, 'num_hidden_layers', '?')} layers, hidden size {getattr(backbone, 'hidden_size', '?')}"
    lines = [f"A boltir **{family}** on a `{backbone.model_type}` backbone ({shape}).", ""]
    if family == "cross-encoder":
        lines.append(f"It reads a query and a document together and gives one relevance score (pooling `{config['pooling']}`, "
                     f"attention `{config['attention']}`, at most {config['max_length']} tokens, queries cut at {config['query_length']}).")
    else:
        what = {"splade": "sparse vocabulary-sized term weights", "colbert": "one vector per token (late interaction)"}
        lines.append(f"It encodes queries and documents apart into {what.get(family, 'one dense vector each')} "
                     f"(similarity `{config.get('similarity')}`; queries cut at {config.get('query_length')} tokens, "
                     f"documents at {config.get('doc_length')}), so documents can be indexed ahead of time.")
    lines += ["", "Its boltir options (`boltir_config.json`):", "", "```json", _json(config), "```"]
    return lines


def _json(values: dict[str, Any]) -> str:
    import json

    return json.dumps(values, indent=2, sort_keys=True, default=str)


def _training(training: TrainingSummary | None) -> list[str]:
    if training is None:
        return ["## Training", "", "Not fine-tuned with boltir: the weights are those it was loaded from."]
    lines = ["## Training", "", f"Fine-tuned with `boltir fit` for {training.steps} optimiser steps ({training.epochs} epoch(s))"
             + (f" in `{training.precision}` precision" if training.precision else "") + ".", "",
             f"- loss: {', '.join(f'`{loss}`' for loss in training.losses) or 'none recorded'}",
             f"- training data: {', '.join(f'`{d}`' for d in training.datasets) or 'not recorded'}"]
    if training.metrics:
        on = f" on {', '.join(f'`{d}`' for d in training.validation_datasets)}" if training.validation_datasets else ""
        lines.append(f"- validation{on}: " + ", ".join(f"{k} {v:.4f}" for k, v in training.metrics.items()))
    return lines


def _snippet(family: str, where: str) -> list[str]:
    module = _FAMILIES.get(family, ("BiEncoderModule",))[0]
    lines = ["## Use it", "", "```python", f'model_id = "{where}"', f"from boltir import {module}",
             f"module = {module}(model_id)"]
    if family == "cross-encoder":
        lines += ['out = module.score("what causes ocean tides", ["The moon pulls the sea.", "A recipe for bread."])',
                  "print(out.scores, out.ranking())"]
    else:
        lines += ['out = module.score("what causes ocean tides", ["The moon pulls the sea.", "A recipe for bread."])',
                  "print(out.scores)"]
    return lines + ["```", "", "`pip install boltir` first; `boltir index`, `boltir search` and `boltir re_rank` take the same "
                    "`model_id` as their model."]


def render_card(model: Any, where: str, training: TrainingSummary | None = None, source: Path | None = None) -> str:
    """The card's text for ``model`` saved at ``where`` (a directory or, once pushed, a Hub id)."""
    family = model.config.family
    _, pipeline_tag, family_tags = _FAMILIES.get(family, ("", "feature-extraction", ()))
    eval_results = None
    if training is not None and training.metrics:
        dataset = (training.validation_datasets or training.datasets or ["validation"])[0]
        eval_results = [EvalResult(task_type=pipeline_tag, dataset_type=dataset, dataset_name=dataset,
                                   metric_type=_measure_key(name), metric_name=name, metric_value=round(value, 4))
                        for name, value in training.metrics.items()]
    data = ModelCardData(
        library_name="boltir", tags=["boltir", family, *family_tags], base_model=_base_model(model, source),
        pipeline_tag=pipeline_tag, license=_license(source),
        datasets=(training.datasets or None) if training is not None else None,
        model_name=Path(where).name if eval_results else None, eval_results=eval_results,
    )
    title = Path(where).name or "boltir model"
    body = [CARD_MARK, "", f"# {title}", "", *_description(model, family), "", *_training(training), "", *_snippet(family, where)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n").content


def write_card(directory: Path, model: Any, where: str, training: TrainingSummary | None = None,
               previous: Path | None = None, source: Path | None = None) -> None:
    """Write boltir's card into ``directory``; a user's card found in ``previous`` (the directory being replaced)
    is copied over unchanged instead."""
    old = previous / CARD_NAME if previous is not None else None
    target = directory / CARD_NAME
    if old is not None and old.is_file() and not is_boltir_card(old):
        target.write_bytes(old.read_bytes())
        return
    target.write_text(render_card(model, where, training, source), encoding="utf-8")


def point_card_at(directory: Path, repo_id: str) -> None:
    """Make boltir's card in ``directory`` load the model from ``repo_id`` (a user's card is left alone)."""
    path = directory / CARD_NAME
    if is_boltir_card(path):
        path.write_text(MODEL_LINE.sub(f'model_id = "{repo_id}"', path.read_text(encoding="utf-8")), encoding="utf-8")


__all__ = ["CARD_MARK", "CARD_NAME", "TrainingSummary", "is_boltir_card", "point_card_at", "render_card", "write_card"]
