"""``boltir.pyterrier``: the PyTerrier transformers of :mod:`boltir.integrations.pyterrier`, under a short name."""

from .integrations.pyterrier import (
    BoltirIndexer,
    BoltirReRanker,
    BoltirRetriever,
    BoltirTextLoader,
    beir_qrels,
    beir_topics,
    frame_to_run,
)

__all__ = ["BoltirIndexer", "BoltirReRanker", "BoltirRetriever", "BoltirTextLoader", "beir_qrels", "beir_topics", "frame_to_run"]
