"""The model side of the service: first-stage model, searcher, optional re-ranker and the corpus's texts.

Everything here is synchronous. Ranking runs in the app's one model thread (see :mod:`boltir.serve.app`), so
the models never run two batches at once and the event loop never waits on a forward pass; a request's hits are
then made on the event loop.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import DocDataset, join_title
from ..data.formats import read_jsonl
from ..errors import ConfigError
from ..index import Searcher, open_searcher, read_manifest
from ..index.faiss import set_search_threads
from ..models import BiEncoderModel, load_model
from ..modules import BiEncoderModule, BM25Module, BoltirModule, ColBERTModule, CrossEncoderModule, LightRetrieverModule, SpladeModule
from .config import ServeConfig

log = logging.getLogger(__name__)

# the module that runs each model class (most specific first: the first whose model_class is the model's own)
_FIRST_STAGE_MODULES = (SpladeModule, ColBERTModule, LightRetrieverModule, BiEncoderModule)
_WORD = re.compile(r"\w{3,}")


@dataclasses.dataclass
class SearchRequest:
    """One query of a search request, as the batcher carries it."""

    query: str
    k: int
    rerank: bool


@dataclasses.dataclass
class Hit:
    doc_id: str
    score: float
    rank: int
    title: str
    text: str


class Corpus:
    """Titles and texts by document id, held in memory (a hit's title and snippet come from here)."""

    def __init__(self, source: str) -> None:
        path = Path(source)
        path = path / "corpus.jsonl" if path.is_dir() else path
        self.documents: dict[str, tuple[str, str]] = {}
        if path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
            for _, record in read_jsonl(path):
                doc_id = str(record.get("_id", record.get("doc_id", record.get("id", ""))))
                self.documents[doc_id] = (str(record.get("title") or "").strip(), str(record.get("text") or "").strip())
        else:  # TSV files and ir_datasets ids: DocDataset joins title and text, so there is no separate title
            self.documents = {doc.doc_id: ("", doc.text) for doc in DocDataset(source)}

    def __len__(self) -> int:
        return len(self.documents)

    def check_covers(self, doc_ids: Any, source: str) -> None:
        missing = [doc_id for doc_id in doc_ids if doc_id not in self.documents]
        if missing:
            raise ConfigError(
                f"serve option corpus: {source} lacks {len(missing)} document(s) the index holds (e.g. '{missing[0]}'): "
                "point corpus at the collection the index was built from."
            )


def snippet(text: str, query: str, length: int, words: tuple[str, ...] | None = None) -> str:
    """``length`` characters of ``text`` from a little before the first query word it contains (its start if none).

    ``words`` is :func:`query_words` of ``query``, made once for all of a query's hits."""
    if len(text) <= length:
        return text
    first = first_word(text, query_words(query) if words is None else words)
    start = max(0, min(first - length // 5, len(text) - length))
    if start:
        start = text.find(" ", start) + 1 or start  # begin at a word
    cut = text[start : start + length]
    return ("…" if start else "") + cut + ("…" if start + length < len(text) else "")


def query_words(query: str) -> tuple[str, ...]:
    """The distinct lower-cased words of three letters or more of ``query`` (none: an empty tuple)."""
    return tuple(dict.fromkeys(_WORD.findall(query.lower())))


def first_word(text: str, words: tuple[str, ...], chunk: int = 256) -> int:
    """Where the first of ``words`` (:func:`query_words`) starts in ``text``, case-blind; 0 when none is there.

    Snippets were the server's largest cost under load: a case-blind regex alternation scanned every hit's whole
    text at ~25 ns a character, holding the GIL ~30 µs a hit. ``str.find`` in the lower-cased text runs at under
    1 ns a character, and each word searches only up to the best start so far. The text is lower-cased and
    searched a ``chunk`` at a time (doubling), because in a hit a query word is mostly near the start: lower-casing
    all of a 1,400-character abstract was 40% of a hit's snippet time.
    """
    if not words:
        return 0
    overlap = max(len(word) for word in words) - 1  # a word across a chunk's start is found in the later chunk
    start = 0
    while start < len(text):
        offset = max(0, start - overlap)
        lowered = text[offset : start + chunk].lower()
        best = len(lowered)
        for word in words:
            found = lowered.find(word, 0, best + len(word) - 1)
            if found >= 0:
                best = found
        if best < len(lowered):
            return offset + best
        start += chunk
        chunk *= 2
    return 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"serve option device is {name}, but torch sees no GPU: use device: cpu.")
    return torch.device(name)


def first_stage_module(name: str | None, manifest: dict[str, Any], index_dir: str) -> BoltirModule:
    """The module that encodes queries for this index: BM25's pass-through, or the family of the given model."""
    if manifest.get("engine") == "bm25":
        return BM25Module()
    name = name or manifest.get("model", {}).get("name_or_path")
    if not name:
        raise ConfigError(f"serve option model is not set and the manifest of {index_dir} names no model: set model.")
    model = load_model(name, default=BiEncoderModel)
    for module_class in _FIRST_STAGE_MODULES:
        if type(model) is module_class.model_class:
            return module_class(model=model)
    raise ConfigError(f"serve option model: {name} is a {type(model).__name__}, not a first-stage model (a bi-encoder).")


def hits(corpus: Corpus, ranking: list[tuple[str, float]], query: str, snippet_chars: int) -> list[Hit]:
    """A query's ranked ``(doc_id, score)`` pairs as hits with title and snippet from ``corpus``."""
    words = query_words(query)
    found = []
    for rank, (doc_id, score) in enumerate(ranking, start=1):
        title, text = corpus.documents[doc_id]
        found.append(Hit(doc_id, float(score), rank, title, snippet(text, query, snippet_chars, words)))
    return found


class SearchService:
    """Answers search, re-rank and encode calls for one index; built once when the server starts.

    ``texts=False`` reads the corpus only when a re-ranker needs it: the service then ranks (:meth:`rank`) but
    makes no hits, as in a model process (:mod:`boltir.serve.process`), whose server holds the corpus itself."""

    def __init__(self, config: ServeConfig, texts: bool = True) -> None:
        self.config = config
        manifest = read_manifest(config.index_dir)
        self.index_name = Path(config.index_dir).resolve().name
        self.engine = str(manifest.get("engine"))
        self.documents = int(manifest.get("documents", manifest.get("count", 0)))
        self.device = resolve_device(config.device)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
            set_search_threads(config.threads)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]
        self.module = first_stage_module(config.model, manifest, config.index_dir)
        self.model_name = str(getattr(self.module.model, "name_or_path", config.model))
        self.searcher: Searcher = open_searcher(config.index_dir)
        self.searcher.check_model(self.module.model)
        self.module.to(self.device).eval()
        if not isinstance(self.module, BM25Module):
            self.module.to(dtype)
        self.reranker: CrossEncoderModule | None = None
        if config.reranker:
            self.reranker = CrossEncoderModule(config.reranker)
            self.reranker.to(self.device, dtype).eval()
        self.corpus: Corpus | None = None
        if texts or self.reranker is not None:
            self.corpus = Corpus(config.corpus)
            self.corpus.check_covers(self.doc_ids(), config.corpus)
        log.info("serving %s (%s, %d documents) with %s on %s", self.index_name, self.engine, self.documents, self.model_name, self.device)

    def doc_ids(self) -> set[str]:
        """The ids of the documents the index holds."""
        return set(self.searcher.doc_ids.tolist())

    def close(self) -> None:
        """Nothing to release in this process (:class:`boltir.serve.process.ModelProcessService` stops its own)."""

    @property
    def reranker_name(self) -> str | None:
        return str(self.reranker.model.name_or_path) if self.reranker is not None else None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model_name, "index": self.index_name, "engine": self.engine,
                "documents": self.documents, "reranker": self.reranker_name}

    def hits(self, ranking: list[tuple[str, float]], query: str) -> list[Hit]:
        """One query's :meth:`rank` as hits, with titles and snippets from the corpus."""
        if self.corpus is None:
            raise RuntimeError("this SearchService was built with texts=False: it ranks, and makes no hits")
        return hits(self.corpus, ranking, query, self.config.limits.snippet_chars)

    @torch.inference_mode()
    def rank(self, requests: list[SearchRequest]) -> list[list[tuple[str, float]]]:
        """Each request's top ``k`` ``(doc_id, score)``: one forward pass and one search call for every query of
        the batch, then one re-ranking pass for those that asked for it."""
        queries = [r.query for r in requests]
        vectors = self.module.embed_queries(queries)
        depth = max(max(r.k for r in requests), self.config.rerank_depth if any(r.rerank for r in requests) else 0)
        run = self.searcher.search(vectors, depth)  # queries named by their positions in the batch
        rankings = [run.ranked(str(i)) if str(i) in run.rankings else [] for i in range(len(requests))]
        asked = [i for i, r in enumerate(requests) if r.rerank]
        if asked and self.reranker is not None:
            candidates = [[doc for doc, _ in rankings[i][: self.config.rerank_depth]] for i in asked]
            assert self.corpus is not None  # read whenever there is a re-ranker (see __init__)
            texts = [[join_title(*self.corpus.documents[doc]) for doc in docs] for docs in candidates]
            new_scores = self.reranker.rank_scores([queries[i] for i in asked], texts)
            for i, docs, row in zip(asked, candidates, new_scores):
                rescored = zip(docs, row.float().cpu().tolist())
                rankings[i] = sorted(rescored, key=lambda item: (-item[1], item[0]))
        return [ranking[: r.k] for ranking, r in zip(rankings, requests)]

    @torch.inference_mode()
    def rerank(self, query: str, texts: list[str]) -> list[float]:
        """Scores of ``texts`` for ``query``: by the re-ranker when one is configured, else the first-stage model."""
        module = self.reranker if self.reranker is not None else self.module
        if isinstance(module, BM25Module):
            raise ConfigError("this service's first stage is BM25, which scores through its index only: configure a reranker.")
        return module.rank_scores([query], [texts])[0].float().cpu().tolist()

    @torch.inference_mode()
    def encode(self, texts: list[str], side: str) -> dict[str, Any]:
        """Dense vectors, or for sparse models each text's non-zero term weights."""
        if isinstance(self.module, BM25Module):
            raise ConfigError("this service's first stage is BM25, which has no vectors to encode.")
        vectors = self.module.embed_queries(texts) if side == "query" else self.module.embed_docs(texts)
        representation = getattr(self.module.model, "representation", "dense")
        if representation == "sparse":
            terms = [dict(self.module.model.terms(row)) for row in vectors]
            return {"representation": "sparse", "terms": terms}
        if representation != "dense" or not isinstance(vectors, torch.Tensor):
            raise ConfigError(f"encode returns dense vectors or sparse terms; this model makes {representation} ones.")
        return {"representation": "dense", "dim": int(vectors.shape[-1]), "vectors": vectors.float().cpu().tolist()}
