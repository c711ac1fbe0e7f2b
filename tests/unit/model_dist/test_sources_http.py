"""Install over real HTTP from a server on 127.0.0.1, including a download cut short."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mochi_core.paths import adapters_home
from mochi_model.dist.errors import SourceError
from mochi_model.dist.identity import ProjectIdentity
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from mochi_model.dist.sources import fetch, upload
from tests.unit.model_dist.helpers import make_adapter


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    uploads: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        cut = self.path.startswith("/cut/")
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # "/cut/..." announces the whole file but sends half of it, then closes the connection.
        self.wfile.write(data[: len(data) // 2] if cut else data)
        if cut:
            self.close_connection = True

    def do_PUT(self) -> None:  # noqa: N802
        self.uploads[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.files, _Handler.uploads = {}, {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    folder = make_adapter(tmp_path / "adapter")
    return pack(folder, name="acme-api", version="1.0", out_dir=tmp_path / "out",
                identity=ProjectIdentity(name="acme-api", git_remote=""))


def test_install_from_an_http_url(server: str, archive: Path, tmp_path: Path) -> None:
    _Handler.files["/adapters/acme-api-1.0.mochi.tar.gz"] = archive.read_bytes()
    local = fetch(f"{server}/adapters/acme-api-1.0.mochi.tar.gz", tmp_path / "dl")
    installed = install_local(local)
    assert installed.spec == "acme-api@1.0"
    assert local.read_bytes() == archive.read_bytes()


def test_an_interrupted_download_is_reported_and_nothing_is_installed(server: str, archive: Path, tmp_path: Path) -> None:
    data = archive.read_bytes()
    _Handler.files["/cut/acme-api-1.0.mochi.tar.gz"] = data
    with pytest.raises(SourceError, match=rf"interrupted.*{len(data) // 2}.*{len(data)}|interrupted after"):
        fetch(f"{server}/cut/acme-api-1.0.mochi.tar.gz", tmp_path / "dl")
    assert not adapters_home().exists()


def test_a_missing_url_gives_the_http_status(server: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch(f"{server}/nothing.mochi.tar.gz", tmp_path / "dl")


def test_a_download_over_the_cap_is_refused(server: str, archive: Path, tmp_path: Path) -> None:
    _Handler.files["/big.mochi.tar.gz"] = archive.read_bytes()
    with pytest.raises(SourceError, match="over the 100-byte cap"):
        fetch(f"{server}/big.mochi.tar.gz", tmp_path / "dl", max_bytes=100)


def test_pack_upload_puts_the_archive_to_an_http_folder(server: str, archive: Path) -> None:
    url = upload(archive, f"{server}/share/")
    assert url.endswith("/share/acme-api-1.0.mochi.tar.gz")
    assert _Handler.uploads["/share/acme-api-1.0.mochi.tar.gz"] == archive.read_bytes()


def test_a_shared_drive_folder_with_one_archive_is_a_source(archive: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    assert Path(upload(archive, str(share) + "/")).is_file()
    assert fetch(str(share), tmp_path / "dl") == share / archive.name
    (share / "other-2.0.mochi.tar.gz").write_bytes(b"")
    with pytest.raises(SourceError, match="exactly one"):
        fetch(str(share), tmp_path / "dl")
