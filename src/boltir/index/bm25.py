"""BM25 over bm25s: the lexical first stage, an engine whose "vectors" are the texts themselves.

Its model is :class:`boltir.BM25Module`, whose ``embed_docs``/``embed_queries`` return texts unchanged
(representation ``"text"``); the indexer tokenises documents batch by batch with bm25s' tokenizer (vocabulary
grows as the corpus streams), and the searcher tokenises queries with the saved vocabulary and stopwords.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, require
from .base import IndexConfig, Indexer, Searcher


def _bm25s():
    return require("bm25s", "bm25s", "the BM25 index", extra="bm25")


class BM25Indexer(Indexer):
    representation: ClassVar[str] = "text"
    config: BM25IndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: BM25IndexConfig, model: Any) -> None:
        super().__init__(directory, config, model)
        self.tokenizer = config.tokenizer()
        self.token_ids: list[list[int]] = []

    def _add(self, embeddings: Any) -> None:
        texts = list(embeddings)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("the BM25 engine indexes texts: use boltir.BM25Module as the model.")
        self.token_ids.extend(self.tokenizer.tokenize(texts, update_vocab=True, return_as="ids", show_progress=False))

    def _write(self, directory: Path) -> dict[str, Any]:
        c = self.config
        retriever = _bm25s().BM25(k1=c.k1, b=c.b, method=c.method)
        retriever.index((self.token_ids, self.tokenizer.get_vocab_dict()), show_progress=False)
        retriever.save(str(directory), show_progress=False)
        self.tokenizer.save_vocab(str(directory))
        self.tokenizer.save_stopwords(str(directory))
        return {"vocabulary": len(self.tokenizer.get_vocab_dict())}


class BM25Searcher(Searcher):
    config: BM25IndexConfig

    def __init__(self, directory: str | os.PathLike[str], config: BM25IndexConfig, manifest: dict[str, Any]) -> None:
        super().__init__(directory, config, manifest)
        self.retriever = _bm25s().BM25.load(str(self.directory), show_progress=False)
        self.tokenizer = config.tokenizer()
        self.tokenizer.load_vocab(str(self.directory))
        self.tokenizer.load_stopwords(str(self.directory))

    def search_arrays(self, query_embeddings: Any, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-``k`` documents of each query text by BM25 score; ``query_embeddings`` are the query texts."""
        texts = list(query_embeddings)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("the BM25 engine searches query texts: use boltir.BM25Module as the model.")
        tokens = self.tokenizer.tokenize(texts, update_vocab=False, return_as="ids", show_progress=False)
        k = min(k, len(self.doc_ids))
        positions, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        # bm25s fills rows with fewer matching documents than k with zero-score entries: drop those
        ids = [[self.doc_ids[p] for p, s in zip(row, srow) if s > 0] for row, srow in zip(positions, scores)]
        return np.asarray(scores, dtype=np.float32), ids


@dataclass
class BM25IndexConfig(IndexConfig):
    """BM25 scoring and its text analysis.

    Attributes:
        k1, b: BM25 term-frequency saturation and length normalisation (Elasticsearch's defaults, as BEIR used).
        method: bm25s' BM25 variant: lucene, robertson, atire, bm25l or bm25+.
        stopwords: a bm25s stopword list name ("en") or None to keep every word.
        stemmer: a Snowball algorithm name for PyStemmer ("english") or None for no stemming.
        lowercase: lowercase texts before splitting them into words.
    """

    engine: ClassVar[str] = "bm25"
    indexer_class: ClassVar[type[Indexer]] = BM25Indexer
    searcher_class: ClassVar[type[Searcher]] = BM25Searcher

    k1: float = 1.2
    b: float = 0.75
    method: str = "lucene"
    stopwords: str | None = "en"
    stemmer: str | None = "english"
    lowercase: bool = True

    def __post_init__(self) -> None:
        methods = ("lucene", "robertson", "atire", "bm25l", "bm25+")
        if self.method not in methods:
            raise ConfigError(f"index_config.method='{self.method}' does not exist; choose one of {list(methods)}.")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}.")


    def tokenizer(self):
        """A bm25s tokenizer with these analysis settings (vocabulary empty until texts pass through it)."""
        stemmer = None
        if self.stemmer:
            stemmer_module = require("Stemmer", "PyStemmer", "BM25 stemming", extra="bm25")
            try:
                stemmer = stemmer_module.Stemmer(self.stemmer).stemWord
            except KeyError:
                raise ConfigError(f"index_config.stemmer='{self.stemmer}' is not a Snowball algorithm "
                                  f"(e.g. {stemmer_module.algorithms()[:5]}).") from None
        return _bm25s().tokenization.Tokenizer(lower=self.lowercase, stopwords=self.stopwords or [], stemmer=stemmer)


__all__ = ["BM25IndexConfig", "BM25Indexer", "BM25Searcher"]
