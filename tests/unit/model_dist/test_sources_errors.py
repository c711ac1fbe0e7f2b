"""Sources that stall, cannot be reached or are not stores at all give one SourceError line."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mochi_model.dist.errors import SourceError
from mochi_model.dist.sources import fetch, upload


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def stalling_server() -> Iterator[tuple[str, int]]:
    """Announces 100 000 bytes, sends 30 000, then sends nothing until the test is over."""
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    sent = 30_000

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * sent)
            release.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/stall-1.0.mochi.tar.gz", sent
    finally:
        release.set()
        listener.close()
        thread.join(10)


def test_a_stalled_download_reports_the_bytes_that_did_arrive(stalling_server: tuple[str, int], tmp_path: Path) -> None:
    url, sent = stalling_server
    with pytest.raises(SourceError, match=rf"interrupted after {sent} bytes"):
        fetch(url, tmp_path / "dl", timeout_s=1.0)


def test_an_ftp_server_that_cannot_be_reached_is_a_source_error(tmp_path: Path) -> None:
    url = f"ftp://127.0.0.1:{_closed_port()}/x.mochi.tar.gz"
    with pytest.raises(SourceError, match=rf"cannot reach {url}: .*refused"):
        fetch(url, tmp_path / "dl")


def test_an_unknown_scheme_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unsupported source 'nope://x/a.mochi.tar.gz'"):
        fetch("nope://x/a.mochi.tar.gz", tmp_path / "dl")


def test_an_object_store_that_cannot_be_reached_is_a_source_error(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    options = {"endpoint_url": f"http://127.0.0.1:{_closed_port()}", "key": "k", "secret": "s",
               "client_kwargs": {"region_name": "eu-west-1"}, "skip_instance_cache": True,
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    with pytest.raises(SourceError, match=r"cannot reach s3://bucket/x.mochi.tar.gz: .*Could not connect"):
        fetch("s3://bucket/x.mochi.tar.gz", tmp_path / "dl", storage_options=options)
    archive = tmp_path / "a-1.0.mochi.tar.gz"
    archive.write_bytes(b"x")
    with pytest.raises(SourceError, match=r"cannot upload to s3://bucket/a-1.0.mochi.tar.gz: .*Could not connect"):
        upload(archive, "s3://bucket/", storage_options=options)


@pytest.mark.parametrize("url", ["hf://a/b..c", "hf://-/x", "hf://org/repo/../../etc@main"])
def test_a_hugging_face_source_the_hub_would_refuse_is_a_source_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=rf"invalid source {re.escape(url)}: .*expected hf://ORG/REPO"):
        fetch(url, tmp_path / "dl")


def test_an_upload_to_an_invalid_hugging_face_repo_is_a_source_error(tmp_path: Path) -> None:
    archive = tmp_path / "a-1.0.mochi.tar.gz"
    archive.write_bytes(b"x")
    with pytest.raises(SourceError, match=r"cannot upload to hf://a/b\.\.c/: .*'a/b\.\.c'"):
        upload(archive, "hf://a/b..c/")
