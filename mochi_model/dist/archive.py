"""Safe extraction of ``.mochi.tar.gz`` archives into a fresh folder.

The tarball is read as a stream and every member is checked *before* a byte is written:
only regular files with plain names (``manifest.json``, ``adapters.safetensors``...) are allowed;
absolute paths, ``..``, sub-folders, symlinks, hardlinks, device files and FIFOs are refused, as are
members whose declared size, or the archive's running total, exceed the cap. Files are created
exclusively (``O_EXCL``) inside the destination, so nothing can be written outside it.
A cut-off or corrupt archive raises :class:`ChecksumMismatch` with "truncated or corrupt".
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from mochi_model.dist.errors import ChecksumMismatch, UnsafeArchive

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: far above any LoRA adapter, far below a disk-filling bomb
MAX_MEMBERS = 64
_HEADER_ALLOWANCE = 4 * 1024**2  # tar headers and padding on top of the file bytes
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _member_name(member: tarfile.TarInfo, archive: str) -> str | None:
    """The plain file name of a member, ``None`` for a harmless ``.`` folder entry; else refuse."""
    raw = member.name
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw) or raw.startswith("\\"):
        raise UnsafeArchive(f"{archive}: refusing member with an absolute path {raw!r}")
    parts = PurePosixPath(raw.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: refusing member {raw!r}: '..' would escape the install folder")
    if member.issym() or member.islnk():
        raise UnsafeArchive(f"{archive}: refusing link {raw!r} -> {member.linkname!r}; archives may hold only files")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchive(f"{archive}: refusing device file or FIFO {raw!r}")
    parts = tuple(p for p in parts if p != ".")
    if member.isdir():
        if not parts:
            return None
        raise UnsafeArchive(f"{archive}: refusing folder {raw!r}; adapter archives are flat")
    if not member.isreg():
        raise UnsafeArchive(f"{archive}: refusing member {raw!r} of unsupported type {member.type!r}")
    if len(parts) != 1 or not _PLAIN_NAME.match(parts[0]):
        raise UnsafeArchive(f"{archive}: refusing member {raw!r}; only plain file names are allowed")
    return parts[0]


class _Limited:
    """A read-only stream that refuses to yield more than ``limit`` decompressed bytes.

    Bounds what tarfile itself reads (long PAX/GNU headers, padding, thousands of empty entries)
    so a small gzip bomb cannot exhaust memory or CPU before member sizes are even checked.
    """

    def __init__(self, raw: gzip.GzipFile, limit: int, label: str) -> None:
        self.raw, self.limit, self.label, self.done = raw, limit, label, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.done += len(data)
        if self.done > self.limit:
            raise UnsafeArchive(f"{self.label} expands to more than {self.limit} bytes; refusing it")
        return data


def safe_extract(archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Extract ``archive`` into the empty folder ``dest``; return ``{file name: sha256}``.

    Raises:
        UnsafeArchive: a member that is not a plain regular file, or sizes over ``max_bytes``.
        ChecksumMismatch: the archive is truncated or corrupt (gzip/tar stream ends early).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    label = archive.name
    digests: dict[str, str] = {}
    total = 0
    try:
        with gzip.open(archive, "rb") as raw, \
                tarfile.open(fileobj=_Limited(raw, max_bytes + _HEADER_ALLOWANCE, label), mode="r|") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise UnsafeArchive(f"{label}: more than {MAX_MEMBERS} entries; not an adapter archive")
                name = _member_name(member, label)
                if name is None:
                    continue
                if name in digests:
                    raise UnsafeArchive(f"{label}: member {name!r} appears twice")
                total += member.size
                if member.size > max_bytes or total > max_bytes:
                    raise UnsafeArchive(
                        f"{label}: member {name!r} declares {member.size} bytes, over the {max_bytes}-byte cap "
                        "(raise it with --max-bytes if this adapter is really that large)"
                    )
                digests[name] = _copy_member(tar, member, dest / name, label)
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        if isinstance(exc, (FileExistsError, PermissionError)):
            raise
        raise ChecksumMismatch(f"{label} is truncated or corrupt ({exc}); download it again") from exc
    return digests


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, label: str) -> str:
    source = tar.extractfile(member)
    if source is None:  # cannot happen for regular files; be explicit anyway
        raise UnsafeArchive(f"{label}: cannot read member {member.name!r}")
    digest = hashlib.sha256()
    written = 0
    with open(target, "xb") as out:
        while block := source.read(1 << 20):
            written += len(block)
            if written > member.size:
                raise UnsafeArchive(f"{label}: member {member.name!r} is longer than it declares")
            digest.update(block)
            out.write(block)
    if written != member.size:
        raise ChecksumMismatch(f"{label} is truncated or corrupt: {member.name!r} ends after {written} of "
                               f"{member.size} bytes; download it again")
    return digest.hexdigest()
