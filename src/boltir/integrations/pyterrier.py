"""boltir models as PyTerrier transformers: retrieve, re-rank, load texts and index in ``>>`` pipelines.

Every transformer works on whole frames: queries are encoded in batches, all candidates of a frame are scored
in one call, so ``pt.Experiment`` over 300 topics runs as fast as ``boltir search`` / ``boltir re_rank``.

    import pyterrier as pt
    from boltir.integrations.pyterrier import BoltirReRanker, BoltirRetriever, BoltirTextLoader, beir_qrels, beir_topics
    retriever = BoltirRetriever(BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2"), "indexes/scifact")
    pipeline = retriever % 100 >> BoltirTextLoader(data) >> BoltirReRanker(CrossEncoderModule(...))
    pt.Experiment([retriever, pipeline], beir_topics(data), beir_qrels(data), [pt.measures.nDCG @ 10])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data import DocDataset, QueryDataset, Run, read_qrels
from ..data.batches import DocBatch, QueryBatch
from ..errors import ConfigError, require
from ..index import FaissIndexConfig, IndexConfig, Searcher, open_searcher
from ..modules import BoltirModule, EncodeOutput

pt = require("pyterrier", "python-terrier", "boltir's PyTerrier transformers", extra="pyterrier")

__all__ = [
    "BoltirIndexer",
    "BoltirReRanker",
    "BoltirRetriever",
    "BoltirTextLoader",
    "beir_qrels",
    "beir_topics",
    "frame_to_run",
]


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], who: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{who} needs the columns {list(columns)} in its input frame; missing {missing} "
                          f"(found {list(frame.columns)}): put a stage that adds them before it in the pipeline.")


def _with(columns: list[str], added: tuple[str, ...], dropped: tuple[str, ...] = ()) -> list[str]:
    """Output columns for PyTerrier's pipeline inspection: the input's, without ``dropped``, then ``added``."""
    return [c for c in columns if c not in added and c not in dropped] + list(added)


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class BoltirRetriever(pt.Transformer):
    """First stage over any boltir index: ``qid, query`` → ``qid, query, docno, score, rank`` (top ``k`` per query).

    Args:
        module: the module that built the index (a bi-encoder, SPLADE, ColBERT, LightRetriever or BM25Module).
        index_dir: an index built by ``boltir index``, :class:`BoltirIndexer` or ``Trainer.index``.
        k: results per query.
        batch_size: queries encoded per forward pass.
        search_settings: engine settings to change at search time (e.g. ``{"nprobe": 64}``).
    """

    def __init__(self, module: BoltirModule, index_dir: str | os.PathLike[str], k: int = 1000, batch_size: int = 256,
                 search_settings: dict[str, Any] | None = None) -> None:
        if k <= 0:
            raise ConfigError(f"k must be positive, got {k}.")
        self.module, self.index_dir, self.k, self.batch_size = module, index_dir, k, batch_size
        self.searcher: Searcher = open_searcher(index_dir, **(search_settings or {}))
        self.searcher.check_model(module.model)

    def __repr__(self) -> str:
        return f"BoltirRetriever({type(self.module).__name__}, {str(self.index_dir)!r}, k={self.k})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        _require_columns(pd.DataFrame(columns=input_columns), ("qid", "query"), "BoltirRetriever")
        return _with(input_columns, ("docno", "score", "rank"), dropped=("text",))

    @torch.inference_mode()
    def transform(self, topics: pd.DataFrame) -> pd.DataFrame:
        _require_columns(topics, ("qid", "query"), "BoltirRetriever")
        queries = topics.drop_duplicates("qid")
        qids, texts = queries["qid"].astype(str).tolist(), queries["query"].astype(str).tolist()
        self.module.eval()
        rows: dict[str, list[Any]] = {"qid": [], "docno": [], "score": [], "rank": []}
        for ids, batch in zip(_chunks(qids, self.batch_size), _chunks(texts, self.batch_size)):
            output = self.module.predict_step(QueryBatch(ids, batch))
            assert isinstance(output, EncodeOutput)
            run = self.searcher.search(output.embeddings, self.k, query_ids=ids)
            for qid in ids:
                ranked = run.ranked(qid)  # best first, ties by doc id: the order boltir's run files have
                rows["qid"] += [qid] * len(ranked)
                rows["docno"] += [doc_id for doc_id, _ in ranked]
                rows["score"] += [score for _, score in ranked]
                rows["rank"] += list(range(len(ranked)))  # PyTerrier counts ranks from 0
        results = pd.DataFrame(rows)
        # the input's other columns (query, query_0, ...) ride along, as PyTerrier retrievers keep them
        others = queries.drop(columns=[c for c in ("docno", "score", "rank", "text") if c in queries.columns])
        others = others.assign(qid=others["qid"].astype(str))
        return others.merge(results, on="qid", how="inner")[self.transform_outputs(list(topics.columns))]


class BoltirReRanker(pt.Transformer):
    """Re-scores candidates with any boltir cross-encoder or bi-encoder: ``qid, query, docno, text`` → new
    ``score`` and ``rank`` (all candidates of the frame in one batched call; the old score is dropped)."""

    def __init__(self, module: BoltirModule) -> None:
        self.module = module

    def __repr__(self) -> str:
        return f"BoltirReRanker({type(self.module).__name__})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        _require_columns(pd.DataFrame(columns=input_columns), ("qid", "query", "docno", "text"), "BoltirReRanker")
        return _with(input_columns, ("score", "rank"))

    @torch.inference_mode()
    def transform(self, results: pd.DataFrame) -> pd.DataFrame:
        _require_columns(results, ("qid", "query", "docno", "text"), "BoltirReRanker")
        if results.empty:
            return results.assign(score=pd.Series(dtype="float64"), rank=pd.Series(dtype="int64"))
        results = results.reset_index(drop=True)
        groups = results.groupby("qid", sort=False).indices  # positions of each query's candidates
        queries = [str(results.at[int(rows[0]), "query"]) for rows in groups.values()]
        texts = results["text"].astype(str).tolist()
        doc_lists = [[texts[i] for i in rows] for rows in groups.values()]
        self.module.eval()
        scores = self.module.rank_scores(queries, doc_lists)
        column = torch.empty(len(results), dtype=torch.float64)
        for rows, values in zip(groups.values(), scores):
            column[torch.as_tensor(rows)] = values.detach().double().cpu()
        return pt.model.add_ranks(results.assign(score=column.numpy()))


class BoltirTextLoader(pt.Transformer):
    """Adds each candidate's ``text`` from a boltir corpus (a BEIR folder, JSONL/TSV file or ir_datasets id),
    as indexing read it (BEIR: title + text). The corpus is streamed once per frame; unknown docnos fail."""

    def __init__(self, corpus: str | os.PathLike[str] | DocDataset) -> None:
        self.corpus = corpus if isinstance(corpus, DocDataset) else DocDataset(corpus)

    def __repr__(self) -> str:
        return f"BoltirTextLoader({self.corpus.source!r})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        _require_columns(pd.DataFrame(columns=input_columns), ("docno",), "BoltirTextLoader")
        return _with(input_columns, ("text",))

    def transform(self, results: pd.DataFrame) -> pd.DataFrame:
        _require_columns(results, ("docno",), "BoltirTextLoader")
        wanted = set(results["docno"].astype(str))
        texts = self.corpus.texts(wanted)
        unknown = sorted(wanted - set(texts))
        if unknown:
            raise ConfigError(f"{len(unknown)} docno(s) are not in the corpus {self.corpus.source} (first: "
                              f"'{unknown[0]}'): load texts from the corpus the index was built from.")
        return results.assign(text=results["docno"].astype(str).map(texts))


class BoltirIndexer(pt.Indexer):
    """Encodes ``{docno, text}`` records (any PyTerrier corpus iterator) into a boltir index; ``index`` returns
    its directory, which :class:`BoltirRetriever` opens.

    Args:
        module: any boltir module that encodes documents.
        index_dir: where the index goes (replaced atomically once complete).
        index_config: the engine; Faiss flat (exact) by default.
        batch_size: documents encoded per call (sorted by length inside it, so batches carry little padding).
        fields: the record fields joined into a document's text (BEIR corpora: ``("title", "text")``).
    """

    def __init__(self, module: BoltirModule, index_dir: str | os.PathLike[str], index_config: IndexConfig | None = None,
                 batch_size: int = 1024, fields: tuple[str, ...] = ("text",)) -> None:
        self.module, self.index_dir, self.batch_size, self.fields = module, index_dir, batch_size, fields
        self.index_config = index_config or FaissIndexConfig()

    @torch.inference_mode()
    def index(self, iter: Iterable[dict[str, Any]], **kwargs: Any) -> str:
        indexer = self.index_config.indexer(self.index_dir, self.module.model)
        self.module.eval()
        try:
            ids: list[str] = []
            texts: list[str] = []
            for record in tqdm(iter, desc="boltir indexing", unit="doc"):
                if "docno" not in record:
                    raise ConfigError(f"BoltirIndexer needs a 'docno' in every record, got the fields {sorted(record)}.")
                text = " ".join(str(record[f]).strip() for f in self.fields if record.get(f)).strip()
                if text:
                    ids.append(str(record["docno"]))
                    texts.append(text)
                if len(ids) >= self.batch_size:
                    self._add(indexer, ids, texts)
                    ids, texts = [], []
            if ids:
                self._add(indexer, ids, texts)
            return str(indexer.finish())
        except BaseException:
            indexer.abort()
            raise

    def _add(self, indexer: Any, ids: list[str], texts: list[str]) -> None:
        output = self.module.predict_step(DocBatch(ids, texts))
        assert isinstance(output, EncodeOutput)
        embeddings = output.embeddings
        indexer.add(ids, embeddings.cpu() if isinstance(embeddings, torch.Tensor) else embeddings)


def beir_topics(folder: str | os.PathLike[str], split: str = "test") -> pd.DataFrame:
    """The queries of a BEIR folder's qrels split as a PyTerrier topics frame (``qid, query``)."""
    queries = QueryDataset(folder, split=split)
    return pd.DataFrame({"qid": [q.query_id for q in queries.queries], "query": [q.text for q in queries.queries]})


def beir_qrels(folder: str | os.PathLike[str], split: str = "test") -> pd.DataFrame:
    """A BEIR folder's ``qrels/<split>.tsv`` as a PyTerrier qrels frame (``qid, docno, label``)."""
    qrels = read_qrels(os.path.join(folder, "qrels", f"{split}.tsv"))
    rows = [(q, d, r) for q, docs in qrels.items() for d, r in docs.items()]
    return pd.DataFrame(rows, columns=["qid", "docno", "label"])


def frame_to_run(results: pd.DataFrame, name: str = "pyterrier") -> Run:
    """A PyTerrier results frame (``qid, docno, score``) as boltir's :class:`~boltir.Run` (to write or evaluate)."""
    _require_columns(results, ("qid", "docno", "score"), "frame_to_run")
    run = Run(name=name)
    for qid, group in results.groupby("qid", sort=False):
        run.add(str(qid), group["docno"].astype(str), group["score"].astype(float))
    return run
