"""Upload to and install from S3, against a real S3-compatible server (moto's server mode) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mochi_model.dist.errors import SourceError
from mochi_model.dist.identity import ProjectIdentity
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from mochi_model.dist.sources import fetch, upload
from tests.unit.model_dist.helpers import make_adapter

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "eu-west-1"}, "skip_instance_cache": True}
    import s3fs

    s3fs.S3FileSystem(**options).mkdir("team-adapters")
    try:
        yield options
    finally:
        server.stop()


def test_upload_then_install_from_s3(s3_options: dict, tmp_path: Path) -> None:
    archive = pack(make_adapter(tmp_path / "adapter"), name="acme-api", version="1.0", out_dir=tmp_path,
                   identity=ProjectIdentity(name="acme-api", git_remote="github.com/acme/api"))
    url = upload(archive, "s3://team-adapters/acme/", storage_options=s3_options)
    assert url == "s3://team-adapters/acme/acme-api-1.0.mochi.tar.gz"
    local = fetch(url, tmp_path / "dl", storage_options=s3_options)
    assert local.read_bytes() == archive.read_bytes()
    assert install_local(local).spec == "acme-api@1.0"
    # a prefix holding exactly one archive works as a source too
    assert fetch("s3://team-adapters/acme/", tmp_path / "dl2", storage_options=s3_options).name == archive.name


def test_a_missing_s3_object_is_reported(s3_options: dict, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        fetch("s3://team-adapters/none-1.0.mochi.tar.gz", tmp_path / "dl", storage_options=s3_options)


def test_a_store_without_its_package_names_the_extra_to_install(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(SourceError, match=r"mochi-code\[gcs\]"):
        fetch("gs://bucket/x.mochi.tar.gz", tmp_path / "dl")
