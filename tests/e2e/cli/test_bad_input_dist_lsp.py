"""`mochi install` and `mochi lsp` as a user runs them: bad input gives one line and a non-zero exit."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def _mochi(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*MOCHI, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "AWS_MAX_ATTEMPTS": "1"})


def _one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_install_from_an_ftp_server_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    url = f"ftp://127.0.0.1:{_closed_port()}/x.mochi.tar.gz"
    _one_line_error(_mochi("install", url, cwd=tmp_path), f"error: cannot reach {url}")


def test_install_of_an_archive_with_a_huge_pax_header_is_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.mochi.tar.gz"
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 700 * 1024**2
    with gzip.open(archive, "wb", compresslevel=1) as out:  # the header alone: the payload never comes
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT) + b"x" * 65536)
    _one_line_error(_mochi("install", str(archive), cwd=tmp_path),
                    f"extended tar header declares {700 * 1024**2} bytes, over the 65536-byte limit")


def test_lsp_on_a_tcp_port_that_is_taken_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = _mochi("lsp", "--tcp", f"127.0.0.1:{port}", "--fake-engine", "{}", cwd=tmp_path)
    _one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


def test_lsp_on_a_port_out_of_range_is_refused(tmp_path: Path) -> None:
    result = _mochi("lsp", "--tcp", "127.0.0.1:70000", "--fake-engine", "{}", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "0-65535" in result.stderr


def test_install_with_a_cap_under_one_megabyte_is_a_usage_error(tmp_path: Path) -> None:
    result = _mochi("install", str(tmp_path / "a.mochi.tar.gz"), "--max-mb", "0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--max-mb" in result.stderr and "greater than or equal to 1" in result.stderr
