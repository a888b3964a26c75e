"""The lexical first stage as a module: texts pass through unchanged and the BM25 engine analyses and scores them.

This is the "text representation" path: a model whose ``representation`` is ``"text"`` emits the texts
themselves from ``embed_docs``/``embed_queries``, so indexing and searching run through the same callbacks,
Trainer methods and CLI subcommands as dense models (``boltir index|search`` with a BM25 index config).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..errors import ConfigError
from .base import BoltirModule


class TextPassThrough(nn.Module):
    """The 'model' of a lexical engine: no weights; the engine's index config holds the text analysis."""

    representation: ClassVar[str] = "text"
    name_or_path = "bm25"

    def describe(self) -> dict[str, Any]:
        return {"name_or_path": self.name_or_path, "class": "BM25Module", "config": {}}

    def index_fingerprint(self) -> dict[str, Any]:
        return {}


class BM25Module(BoltirModule):
    """BM25 retrieval through ``boltir index``/``search`` with :class:`boltir.BM25IndexConfig`.

    Example (YAML): ``model: {class_path: boltir.BM25Module}`` plus ``index_config: {class_path: boltir.BM25IndexConfig}``.
    """

    def __init__(self) -> None:
        super().__init__(model=TextPassThrough())  # type: ignore[arg-type]

    def embed_docs(self, texts: list[str], encoding: Any = None) -> list[str]:  # type: ignore[override]
        return list(texts)

    def embed_queries(self, texts: list[str], encoding: Any = None) -> list[str]:  # type: ignore[override]
        return list(texts)

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        raise ConfigError("BM25Module scores through a BM25 index (boltir index, then boltir search), not by re-ranking.")
