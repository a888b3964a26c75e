"""SearchCallback: what it checks before evaluating a run."""

from __future__ import annotations

import logging
import types

import numpy as np

from boltir.callbacks import SearchCallback


def test_search_warns_about_judged_documents_the_index_lacks(caplog):
    callback = SearchCallback("some-index")
    callback.searcher = types.SimpleNamespace(doc_ids=np.array(["d1", "d2"], dtype=object))
    with caplog.at_level(logging.WARNING, logger="boltir"):
        callback.check_qrels({"q1": {"d1": 1, "d9": 1}, "q2": {"d2": 0}})
    assert "judge 1 document(s) that are not in the index at some-index (first: 'd9')" in caplog.text
