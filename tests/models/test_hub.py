"""Pushing to the Hub: ``push_to_hub`` and ``boltir push`` against a stand-in for the Hub's HTTP API on a free port."""

from __future__ import annotations

import argparse
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants

from boltir import BiEncoderModule
from boltir.cli import push as push_cli
from boltir.cli.main import main as boltir_main
from boltir.errors import HubError
from boltir.models.card import CARD_NAME


class StandInHub(BaseHTTPRequestHandler):
    """The endpoints ``create_repo`` and ``upload_folder`` call: create a repo, pre-upload (every file goes inline,
    no LFS), commit (NDJSON of base64 files). Anything else answers 404 and is recorded, so a test sees it."""

    repos: dict[str, dict] = {}
    unknown: list[str] = []

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = self.path.split("?")[0].strip("/").split("/")
        if self.headers.get("Authorization") != "Bearer hf_test":
            return self._reply(401, {"error": "Invalid credentials"})
        if parts[:3] == ["api", "repos", "create"]:
            request = json.loads(body)
            repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
            self.repos.setdefault(repo_id, {"private": request.get("private", request.get("visibility") == "private"), "files": {}, "commits": []})
            return self._reply(200, {"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id, "id": repo_id})
        if parts == ["api", "validate-yaml"]:  # the Hub checks a README's front matter before the commit
            yaml.safe_load(json.loads(body)["content"].split("---")[1])
            return self._reply(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "models"] and parts[4:5] == ["preupload"]:
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files]})
        if parts[:2] == ["api", "models"] and parts[4:5] == ["commit"]:
            repo = self.repos[f"{parts[2]}/{parts[3]}"]
            for line in body.decode().splitlines():
                record = json.loads(line)
                if record["key"] == "header":
                    repo["commits"].append(record["value"]["summary"])
                elif record["key"] == "file":
                    repo["files"][record["value"]["path"]] = base64.b64decode(record["value"]["content"])
            return self._reply(200, {"commitUrl": f"http://{self.headers['Host']}/{parts[2]}/{parts[3]}/commit/1", "commitOid": "1" * 40})
        self.unknown.append(f"POST {self.path}")
        self._reply(404, {"error": "not in the stand-in"})

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/api/agent-harnesses":  # huggingface_hub's user-agent registry (empty here)
            return self._reply(200, {"standardEnvVars": [], "harnesses": {}})
        self.unknown.append(f"GET {self.path}")
        self._reply(404, {"error": "not in the stand-in"})


@pytest.fixture()
def hub(monkeypatch):
    """A running stand-in Hub; huggingface_hub pointed at it (as HF_ENDPOINT would) and out of offline mode."""
    StandInHub.repos, StandInHub.unknown = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield StandInHub
    server.shutdown()
    thread.join()


def test_push_to_hub_uploads_the_saved_model_and_its_card(hub, tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    url = module.push_to_hub("user/tiny", private=True, token="hf_test", commit_message="first")
    assert not hub.unknown, hub.unknown
    repo = hub.repos["user/tiny"]
    assert repo["private"] is True and repo["commits"] == ["first"] and url.endswith("/commit/1")
    module.save_pretrained(tmp_path / "saved")
    local = {str(p.relative_to(tmp_path / "saved")) for p in (tmp_path / "saved").rglob("*") if p.is_file()}
    assert set(repo["files"]) == local
    assert repo["files"]["boltir_config.json"] == (tmp_path / "saved" / "boltir_config.json").read_bytes()
    assert 'model_id = "user/tiny"' in repo["files"][CARD_NAME].decode()  # the pushed card loads from the Hub


def test_boltir_push_uploads_a_directory_and_keeps_it_unchanged(hub, tiny_bert_dir, tmp_path):
    BiEncoderModule(tiny_bert_dir).save_pretrained(tmp_path / "model")
    before = (tmp_path / "model" / CARD_NAME).read_text()
    parser = argparse.ArgumentParser()
    push_cli.add_arguments(parser)
    assert push_cli.run(parser.parse_args([str(tmp_path / "model"), "org/model", "--token", "hf_test"])) == 0
    assert not hub.unknown, hub.unknown
    assert hub.repos["org/model"]["files"]["config.json"] == (tmp_path / "model" / "config.json").read_bytes()
    assert (tmp_path / "model" / CARD_NAME).read_text() == before


def test_push_errors_are_one_clear_line(hub, tiny_bert_dir, tmp_path, monkeypatch, capsys):
    BiEncoderModule(tiny_bert_dir).save_pretrained(tmp_path / "model")
    with pytest.raises(HubError, match=r"refused pushing to org/model \(HTTP 401\): pass a token"):
        from boltir.models.hub import push_directory

        push_directory(tmp_path / "model", "org/model", token="wrong")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for args, message in (([str(tmp_path / "model"), "org/model", "--token", "hf_test"], "HF_HUB_OFFLINE is set"),
                          ([str(tiny_bert_dir), "org/model"], "not a saved boltir model")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:  # the dispatcher's one line on stderr, as for every command
            boltir_main(["push", *args])
        assert exit_info.value.code == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("boltir: error:") and message in err and len(err.splitlines()) == 1
        assert captured.out == ""


def test_unreachable_hub_is_a_hub_error(tiny_bert_dir, tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    BiEncoderModule(tiny_bert_dir).save_pretrained(tmp_path / "model")
    from boltir.models.hub import push_directory

    with pytest.raises(HubError, match="cannot reach the Hub"):
        push_directory(tmp_path / "model", "org/model", token="hf_test")
    assert Path(tmp_path / "model").is_dir()
