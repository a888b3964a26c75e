"""The search page: one self-contained HTML file (inline style and script, no external assets)."""

from __future__ import annotations

import json
from importlib.resources import files


def search_page(reranker: str | None, max_k: int) -> str:
    """``page.html`` with the service's settings the script needs (whether there is a re-ranker, the largest k)."""
    html = files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    settings = json.dumps({"reranker": reranker, "max_k": max_k}).replace("<", "\\u003c")  # no "</script>" inside
    return html.replace("/*CONFIG*/{}", settings, 1)
