"""Malicious and broken archives are refused with a clear message and leave nothing behind."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from mochi_core.paths import adapters_home
from mochi_model.dist.errors import ChecksumMismatch, DistError, ManifestError, UnsafeArchive
from mochi_model.dist.install import install_local
from tests.unit.model_dist.helpers import BASE, file_member, good_members, manifest_for, tar_gz


def _refused(archive: Path, error: type[DistError], match: str, **kwargs) -> None:
    """Install must raise ``error`` matching ``match`` and leave the adapters home empty."""
    with pytest.raises(error, match=match):
        install_local(archive, expected_base_model=BASE, **kwargs)
    home = adapters_home()
    assert not home.exists() or list(home.iterdir()) == [], f"left behind: {list(home.rglob('*'))}"


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_a_well_formed_hand_made_archive_installs(tmp_path: Path) -> None:
    members = good_members()
    installed = install_local(tar_gz(tmp_path / "ok.mochi.tar.gz", members), expected_base_model=BASE)
    assert (installed.path / "adapters.safetensors").read_bytes() == members[2][1]


def test_path_traversal_member_is_refused(tmp_path: Path) -> None:
    archive = tar_gz(tmp_path / "a.tar.gz", [*good_members(), file_member("../../escaped.txt", b"pwned")])
    _refused(archive, UnsafeArchive, r"'\.\.' would escape")
    assert not list(tmp_path.parent.rglob("escaped.txt"))


def test_absolute_path_member_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "abs-escaped.txt"
    archive = tar_gz(tmp_path / "a.tar.gz", [file_member(str(target), b"pwned"), *good_members()])
    _refused(archive, UnsafeArchive, "absolute path")
    assert not target.exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_links_are_refused(tmp_path: Path, kind: bytes) -> None:
    archive = tar_gz(tmp_path / "a.tar.gz", [_link("adapters.safetensors", "/etc/passwd", kind), *good_members()[:2]])
    _refused(archive, UnsafeArchive, "refusing link")


def test_device_files_are_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("adapters.safetensors")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    _refused(tar_gz(tmp_path / "a.tar.gz", [(info, None), *good_members()[:2]]), UnsafeArchive, "device file")


def test_nested_folders_are_refused(tmp_path: Path) -> None:
    archive = tar_gz(tmp_path / "a.tar.gz", [*good_members(), file_member("checkpoints/0001.safetensors", b"x")])
    _refused(archive, UnsafeArchive, "plain file names")


def test_wrong_checksum_is_refused(tmp_path: Path) -> None:
    members = good_members()
    info, _ = members[2]
    members[2] = (info, b"\x01" * info.size)  # same size, different bytes
    _refused(tar_gz(tmp_path / "a.tar.gz", members), ChecksumMismatch, "adapters.safetensors has sha256")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    members = good_members()
    size = len(members[2][1])
    members[2] = file_member("adapters.safetensors", members[2][1][:40])
    _refused(tar_gz(tmp_path / "a.tar.gz", members), ChecksumMismatch, f"40 bytes but the manifest says {size}.*truncated")


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    whole = tar_gz(tmp_path / "whole.tar.gz", good_members(), ).read_bytes()
    cut = tmp_path / "cut.mochi.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    _refused(cut, ChecksumMismatch, "truncated or corrupt")


def test_missing_manifest_is_refused(tmp_path: Path) -> None:
    _refused(tar_gz(tmp_path / "a.tar.gz", good_members()[1:]), ManifestError, "no manifest.json")


def test_unknown_manifest_schema_version_is_refused(tmp_path: Path) -> None:
    _refused(tar_gz(tmp_path / "a.tar.gz", good_members(schema_version=99)), ManifestError, "schema version 99")


def test_huge_declared_size_in_manifest_is_refused(tmp_path: Path) -> None:
    members = good_members()
    manifest = json.loads(members[0][1])
    manifest["files"][1]["size"] = 10**13
    members[0] = file_member("manifest.json", json.dumps(manifest).encode())
    _refused(tar_gz(tmp_path / "a.tar.gz", members), UnsafeArchive, "over the .*-byte cap")


def test_huge_declared_member_size_is_refused_before_reading(tmp_path: Path) -> None:
    """A tar header claiming 10 TB must be refused from the header alone, not after filling the disk."""
    info = tarfile.TarInfo("adapters.safetensors")
    info.size = 10**13
    raw = io.BytesIO()
    raw.write(info.tobuf(format=tarfile.PAX_FORMAT))
    raw.write(b"\x00" * 4096)  # far less data than declared
    archive = tmp_path / "bomb.mochi.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue()))
    _refused(archive, UnsafeArchive, "declares 10000000000000 bytes")


def test_files_missing_from_the_manifest_are_refused(tmp_path: Path) -> None:
    archive = tar_gz(tmp_path / "a.tar.gz", [*good_members(), file_member("payload.sh", b"rm -rf ~")])
    _refused(archive, UnsafeArchive, "does not list: payload.sh")


def test_unsafe_file_names_in_the_manifest_are_refused(tmp_path: Path) -> None:
    files = {"adapter_config.json": b"{}", "adapters.safetensors": b"\x00"}
    manifest = manifest_for(files)
    manifest["files"].append({"path": "../x", "sha256": "0" * 64, "size": 1})
    members = [file_member("manifest.json", json.dumps(manifest).encode()), *(file_member(n, b) for n, b in files.items())]
    _refused(tar_gz(tmp_path / "a.tar.gz", members), ManifestError, "unsafe or invalid file name '../x'")


def test_a_name_that_is_not_a_safe_folder_name_is_refused(tmp_path: Path) -> None:
    _refused(tar_gz(tmp_path / "a.tar.gz", good_members(name="../../etc")), ManifestError, "invalid adapter name")


def test_a_gzip_bomb_in_tar_headers_is_refused_before_it_is_read_into_memory(tmp_path: Path) -> None:
    info, data = file_member("manifest.json", b"{}")
    info.pax_headers = {"comment": "x" * (6 * 1024**2)}  # 6 MiB header; compresses to a few KB
    archive = tar_gz(tmp_path / "bomb.mochi.tar.gz", [(info, data), *good_members()[1:]])
    assert archive.stat().st_size < 100_000
    _refused(archive, UnsafeArchive, "extended tar header declares 6291473 bytes, over the 65536-byte limit",
             max_bytes=1024)


def test_thousands_of_entries_are_refused(tmp_path: Path) -> None:
    dots = []
    for _ in range(100):
        info = tarfile.TarInfo(".")
        info.type = tarfile.DIRTYPE
        dots.append((info, None))
    _refused(tar_gz(tmp_path / "many.mochi.tar.gz", [*dots, *good_members()]), UnsafeArchive, "more than 64 entries")
