"""hf://ORG/REPO sources through huggingface_hub, against a minimal hub API served on 127.0.0.1.

The real hub is unreachable here; huggingface_hub talks to ``HF_ENDPOINT`` instead (as with a
self-hosted mirror), so the real client code path runs: file listing, resolve, download.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mochi_model.dist.errors import SourceError
from mochi_model.dist.identity import ProjectIdentity
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from mochi_model.dist.sources import fetch
from tests.unit.model_dist.helpers import make_adapter

COMMIT = "a" * 40


class _Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}  # "org/repo/file" -> bytes

    def _file(self) -> tuple[str, bytes] | None:
        # /{org}/{repo}/resolve/{revision}/{filename}
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            key = "/".join([parts[0], parts[1], *parts[4:]])
            if key in self.files:
                return key, self.files[key]
        return None

    def _send_file_headers(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server API
        found = self._file()
        if found is None:
            self.send_error(404)
            return
        self._send_file_headers(found[1])

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/api/models/"):
            repo = "/".join(self.path[len("/api/models/") :].split("/")[:2])
            listing = [{"type": "file", "path": k[len(repo) + 1 :], "size": len(v), "oid": "0"}
                       for k, v in self.files.items() if k.startswith(repo + "/")]
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        found = self._file()
        if found is None:
            self.send_error(404)
            return
        self._send_file_headers(found[1])
        self.wfile.write(found[1])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from huggingface_hub import constants

    _Hub.files = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        yield endpoint
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return pack(make_adapter(tmp_path / "adapter"), name="acme-api", version="1.0", out_dir=tmp_path / "out",
                identity=ProjectIdentity(name="acme-api", git_remote=""))


def test_install_from_a_hub_repo_holding_one_archive(hub: str, archive: Path, tmp_path: Path) -> None:
    _Hub.files = {f"acme/adapters/{archive.name}": archive.read_bytes(), "acme/adapters/README.md": b"# hi"}
    local = fetch("hf://acme/adapters", tmp_path / "dl")
    assert local.read_bytes() == archive.read_bytes()
    assert install_local(local).spec == "acme-api@1.0"


def test_install_of_a_named_file_at_a_revision(hub: str, archive: Path, tmp_path: Path) -> None:
    _Hub.files = {f"acme/adapters/{archive.name}": archive.read_bytes()}
    local = fetch(f"hf://acme/adapters/{archive.name}@main", tmp_path / "dl")
    assert local.name == archive.name


def test_a_missing_hub_file_is_a_source_error(hub: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot download hf://acme/adapters/none.mochi.tar.gz"):
        fetch("hf://acme/adapters/none.mochi.tar.gz", tmp_path / "dl")


def test_an_hf_url_without_a_repo_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"hf://ORG/REPO"):
        fetch("hf://acme", tmp_path / "dl")
