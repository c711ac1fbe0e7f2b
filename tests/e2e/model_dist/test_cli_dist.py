"""The `mochi` command as users run it: pack --upload s3://, install s3://, list --json, uninstall.

Subprocesses with the S3 endpoint and credentials in the environment (AWS_ENDPOINT_URL...), as a
team would configure them, against moto's S3 server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.model_dist.helpers import good_members, make_adapter, tar_gz

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
    import s3fs

    s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL"], key="testing", secret="testing",
                      client_kwargs={"region_name": "eu-west-1"}, skip_instance_cache=True).mkdir("shared")
    try:
        yield env
    finally:
        server.stop()


def _mochi(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MOCHI, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "acme-api"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text('[remote "origin"]\n\turl = https://github.com/acme/api.git\n')
    return root


def test_pack_upload_to_s3_then_install_list_and_uninstall(s3_env: dict, project: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "train-out")
    packed = _mochi("pack", str(adapter), "--name", "acme-api", "--version", "1.0", "-o", str(tmp_path / "out"),
                    "--project", str(project), "--upload", "s3://shared/adapters/", env=s3_env)
    assert packed.returncode == 0, packed.stderr
    assert "uploaded s3://shared/adapters/acme-api-1.0.mochi.tar.gz" in packed.stdout

    installed = _mochi("install", "s3://shared/adapters/acme-api-1.0.mochi.tar.gz", "--project", str(project),
                       env=s3_env)
    assert installed.returncode == 0, installed.stderr
    assert "installed acme-api@1.0" in installed.stdout

    listed = _mochi("list", "--json", "--project", str(project))
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["version"], row["type"], row["used"], row["weight"]) == ("acme-api", "1.0", "project", True, 1.0)
    assert "github.com/acme/api" in row["reason"]

    removed = _mochi("uninstall", "acme-api@1.0")
    assert removed.returncode == 0 and "removed acme-api@1.0" in removed.stdout
    assert json.loads(_mochi("list", "--json", "--project", str(project)).stdout) == []


def test_install_of_a_tampered_archive_fails_with_a_one_line_error(project: Path, tmp_path: Path) -> None:
    members = good_members()
    info, _ = members[2]
    members[2] = (info, b"\x07" * info.size)
    archive = tar_gz(tmp_path / "evil-1.0.mochi.tar.gz", members)
    result = _mochi("install", str(archive), "--project", str(project))
    assert result.returncode == 1
    assert "error: adapters.safetensors has sha256" in result.stderr
    assert "Traceback" not in result.stderr
