"""Oversized tar headers, names and counts are refused from the 512-byte header, before their payload is read.

Python's tarfile reads a PAX header whole into memory (a 0.7 MB archive with a 700 MB header took
`mochi install` to 2.3 GB before a misleading refusal); Mochi's reader checks each header first.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from mochi_model.dist.errors import ManifestError, UnsafeArchive
from mochi_model.dist.install import install_local
from tests.unit.model_dist.helpers import BASE, file_member, good_members, tar_gz

BLOCK = tarfile.BLOCKSIZE


def _header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _streamed_archive(dest: Path, kind: bytes, payload_size: int, prefix: bytes = b"") -> Path:
    """A gzip tarball whose first header announces ``payload_size`` bytes of ``kind``, written in
    1 MiB pieces so the test itself never holds the payload (it compresses to a few dozen KB)."""
    with gzip.open(dest, "wb", compresslevel=1) as out:
        out.write(_header("././@Header", kind, payload_size))
        out.write(prefix)
        left = payload_size - len(prefix)
        chunk = b"x" * (1 << 20)
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        out.write(b"\0" * (-payload_size % BLOCK))
        for info, data in good_members():
            out.write(info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % BLOCK))
        out.write(b"\0" * (2 * BLOCK))
    return dest


def _peak_while_refused(archive: Path, match: str) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchive, match=match):
            install_local(archive, expected_base_model=BASE)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_pax_header_is_refused_from_its_header_without_reading_it_into_memory(tmp_path: Path) -> None:
    size = 64 * 1024**2
    archive = _streamed_archive(tmp_path / "pax-bomb.mochi.tar.gz", tarfile.XHDTYPE, size,
                                prefix=f"{size} comment=".encode())
    assert archive.stat().st_size < 1024**2
    peak = _peak_while_refused(archive, rf"extended tar header declares {size} bytes, over the 65536-byte limit")
    assert peak < 8 * 1024**2, f"peak Python memory {peak / 1024**2:.1f} MiB while refusing"


def test_a_huge_gnu_long_name_is_refused_from_its_header_without_reading_it(tmp_path: Path) -> None:
    size = 32 * 1024**2
    archive = _streamed_archive(tmp_path / "name-bomb.mochi.tar.gz", tarfile.GNUTYPE_LONGNAME, size)
    peak = _peak_while_refused(archive, rf"declares {size} bytes, over the 1024-byte limit")
    assert peak < 8 * 1024**2, f"peak Python memory {peak / 1024**2:.1f} MiB while refusing"


def test_a_pax_member_name_over_the_name_limit_is_refused(tmp_path: Path) -> None:
    members = good_members()
    info, data = members[0]
    info.pax_headers = {"path": "m" * 2000}
    archive = tar_gz(tmp_path / "long.mochi.tar.gz", [(info, data), *members[1:]])
    with pytest.raises(UnsafeArchive, match="member name is over 1024 bytes"):
        install_local(archive, expected_base_model=BASE)


def test_a_global_pax_header_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "global.mochi.tar.gz"
    records = b"22 path=manifest.json\n"
    body = _header("././@Global", tarfile.XGLTYPE, len(records)) + records + b"\0" * (-len(records) % BLOCK)
    for info, data in good_members():
        body += info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % BLOCK)
    archive.write_bytes(gzip.compress(body + b"\0" * (2 * BLOCK)))
    with pytest.raises(UnsafeArchive, match="global tar header"):
        install_local(archive, expected_base_model=BASE)


def test_a_size_given_in_a_pax_header_is_checked_before_any_data_is_read(tmp_path: Path) -> None:
    members = good_members()
    info, data = members[2]
    info.pax_headers = {"size": str(10**13)}
    archive = tar_gz(tmp_path / "size.mochi.tar.gz", [*members[:2], (info, data)])
    with pytest.raises(UnsafeArchive, match="declares 10000000000000 bytes"):
        install_local(archive, expected_base_model=BASE)


def test_a_refusal_quotes_at_most_80_characters_of_a_hostile_member_name(tmp_path: Path) -> None:
    members = good_members()
    info, data = members[0]
    info.pax_headers = {"path": "evil/" + "m" * 1000}
    archive = tar_gz(tmp_path / "quoted.mochi.tar.gz", [(info, data), *members[1:]])
    with pytest.raises(UnsafeArchive, match="only plain file names") as refused:
        install_local(archive, expected_base_model=BASE)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("name", ["manifest.json", "adapter_config.json"])
def test_metadata_over_4_mib_is_refused_before_it_is_read(tmp_path: Path, name: str) -> None:
    members = good_members()
    index = [info.name for info, _ in members].index(name)
    info, data = members[index]
    padded = data + b" " * (5 * 1024**2)  # still valid JSON: parsed whole before the fix
    if name == "adapter_config.json":  # the manifest must list the padded file's size and sha256
        manifest = json.loads(members[0][1])
        entry = next(f for f in manifest["files"] if f["path"] == name)
        entry["size"], entry["sha256"] = len(padded), hashlib.sha256(padded).hexdigest()
        members[0] = file_member("manifest.json", json.dumps(manifest).encode())
    members[index] = file_member(name, padded)
    archive = tar_gz(tmp_path / "fat.mochi.tar.gz", members)
    with pytest.raises(ManifestError, match=rf"{name} is {len(padded)} bytes, over the 4194304-byte limit"):
        install_local(archive, expected_base_model=BASE)
