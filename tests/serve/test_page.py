"""The search page in the operating system's Chromium (Playwright): type a SciFact test query, press Enter, see the
judged-relevant document with its score, and the time taken. Saves docs/serve.png (shown in the README) with BOLTIR_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from boltir import read_qrels

from .conftest import ROOT, ServerProcess, build_index

playwright = pytest.importorskip("playwright.sync_api")

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"  # as tests/conftest.py finds it
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUERY_ID = "1"  # a SciFact test query with one judged-relevant document; the first few hundred documents join it
SUBSET_SIZE = 300


@pytest.fixture(scope="module")
def scifact_server(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("scifact-subset")
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    relevant = {doc for doc, grade in qrels[QUERY_ID].items() if grade > 0}
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for i, line in enumerate(lines) if i < SUBSET_SIZE or json.loads(line)["_id"] in relevant]
    (root / "corpus.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    index_dir = build_index(minilm_dir, root / "corpus.jsonl", root / "scifact-subset")
    config = {"index_dir": str(index_dir), "corpus": str(root), "model": "sentence-transformers/all-MiniLM-L6-v2", "device": "cpu"}
    server = ServerProcess(config, root)
    httpx.get(server.url + "/search", params={"q": "warm-up query", "k": 1}, timeout=120)  # the first call is slow
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()}
    yield server, queries[QUERY_ID], relevant
    server.stop()


@pytest.mark.slow
def test_search_page_shows_the_relevant_document_with_score_and_time(scifact_server, tmp_path):
    server, query, relevant = scifact_server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(server.url + "/")
        page.keyboard.type(query)  # the query box has focus on load: keyboard only
        page.keyboard.press("Enter")
        page.wait_for_selector("#results li")
        shown = page.eval_on_selector_all("#results li", "items => items.map(i => i.dataset.docId)")
        assert relevant & set(shown), (shown, relevant)
        first = page.locator("#results li").first
        assert first.locator(".score").inner_text().startswith("score ")
        assert float(first.locator(".score").inner_text().split()[1]) > 0
        assert page.locator("#results mark").count() > 0  # query words highlighted in titles and snippets
        status = page.locator("#status").inner_text()
        assert " results in " in status and status.split(" results in ")[1].split()[0].replace(".", "").isdigit()
        page.keyboard.press("ArrowDown")  # keyboard-first: arrows move through results
        assert page.evaluate("document.activeElement.dataset.docId") == shown[0]
        page.evaluate("document.activeElement.blur()")
        # the README's screenshot is remade on request only: a test run leaves the working tree as it was
        shot = ROOT / "docs" / "serve.png" if os.environ.get("BOLTIR_UPDATE_SCREENSHOT") else tmp_path / "serve.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        browser.close()
