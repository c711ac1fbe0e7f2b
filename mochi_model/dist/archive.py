"""Safe extraction of ``.mochi.tar.gz`` archives into a fresh folder.

The tarball is read as a stream by a small reader of its own: every 512-byte header is parsed
(:meth:`tarfile.TarInfo.frombuf`) and checked *before* anything after it is read, so no size an
archive declares is trusted. Extended headers (PAX ``x``, GNU long names) are capped at
:data:`MAX_HEADER_BYTES` and names at :data:`MAX_NAME_BYTES` before their payload is read (Python's
``tarfile`` reads a PAX header whole into memory: a 0.7 MB archive with a 700 MB header took it to
2.3 GB); global PAX headers and sparse files are refused; at most :data:`MAX_MEMBERS` members.
Only regular files with plain names (``manifest.json``, ``adapters.safetensors``...) are allowed;
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
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mochi_model.dist.errors import ChecksumMismatch, UnsafeArchive

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: far above any LoRA adapter, far below a disk-filling bomb
MAX_MEMBERS = 64
MAX_HEADERS = 4 * MAX_MEMBERS  # extended headers included
MAX_HEADER_BYTES = 64 * 1024  # one PAX / GNU long-name header; ours hold none at all
MAX_NAME_BYTES = 1024  # a member name (plain names are at most 128 characters anyway)
_BLOCK = tarfile.BLOCKSIZE
_HEADER_ALLOWANCE = 4 * 1024**2  # tar headers and padding on top of the file bytes
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PAX_RECORD = re.compile(rb"(\d{1,6}) ")
_EXTENDED = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


def _shown(name: str) -> str:
    """A member name as messages quote it: at most 80 characters, so a hostile name cannot flood them."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _member_name(member: tarfile.TarInfo, archive: str) -> str | None:
    """The plain file name of a member, ``None`` for a harmless ``.`` folder entry; else refuse."""
    raw = member.name
    shown = _shown(raw)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw) or raw.startswith("\\"):
        raise UnsafeArchive(f"{archive}: refusing member with an absolute path {shown}")
    parts = PurePosixPath(raw.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: refusing member {shown}: '..' would escape the install folder")
    if member.issym() or member.islnk():
        raise UnsafeArchive(f"{archive}: refusing link {shown} -> {_shown(member.linkname)}; archives may hold only files")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchive(f"{archive}: refusing device file or FIFO {shown}")
    if member.type == tarfile.GNUTYPE_SPARSE:
        raise UnsafeArchive(f"{archive}: refusing sparse file {shown}; `mochi pack` writes plain files")
    parts = tuple(p for p in parts if p != ".")
    if member.isdir():
        if not parts:
            return None
        raise UnsafeArchive(f"{archive}: refusing folder {shown}; adapter archives are flat")
    if not member.isreg():
        raise UnsafeArchive(f"{archive}: refusing member {shown} of unsupported type {member.type!r}")
    if len(parts) != 1 or not _PLAIN_NAME.match(parts[0]):
        raise UnsafeArchive(f"{archive}: refusing member {shown}; only plain file names are allowed")
    return parts[0]


class _Limited:
    """A read-only stream that refuses to yield more than ``limit`` decompressed bytes.

    Bounds the whole stream (headers, padding, thousands of empty entries) so a small gzip bomb
    cannot exhaust CPU or disk whatever the headers say.
    """

    def __init__(self, raw: BinaryIO, limit: int, label: str) -> None:
        self.raw, self.limit, self.label, self.done = raw, limit, label, 0

    def read(self, size: int) -> bytes:
        data = self.raw.read(size)
        self.done += len(data)
        if self.done > self.limit:
            raise UnsafeArchive(f"{self.label} expands to more than {self.limit} bytes; refusing it")
        return data

    def exactly(self, size: int) -> bytes:
        """``size`` bytes, or fewer only at the end of the stream."""
        parts, left = [], size
        while left > 0:
            block = self.read(min(left, 1 << 20))
            if not block:
                break
            parts.append(block)
            left -= len(block)
        return b"".join(parts)


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _pax_records(payload: bytes, label: str) -> dict[str, str]:
    """``{keyword: value}`` of a PAX extended header (``"%d %s=%s\\n"`` records)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        match = _PAX_RECORD.match(payload, pos)
        length = int(match.group(1)) if match else 0
        record = payload[pos : pos + length]
        if not match or length <= len(match.group(0)) or len(record) != length or not record.endswith(b"\n") \
                or b"=" not in record:
            raise ChecksumMismatch(f"{label} is truncated or corrupt (bad extended tar header); download it again")
        keyword, _, value = record[len(match.group(0)) : -1].partition(b"=")
        records[keyword.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _check_name_size(name: str, label: str) -> None:
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeArchive(f"{label}: a member name is over {MAX_NAME_BYTES} bytes; not an adapter archive")


def _headers(stream: _Limited, label: str, max_bytes: int) -> Iterator[tarfile.TarInfo]:
    """Each member's header, with PAX / GNU long-name headers applied; stops at the end marker.

    The caller must read exactly ``member.size`` data bytes (regular files) before the next one.
    """
    pending: dict[str, str] = {}
    headers = members = 0
    while True:
        block = stream.exactly(_BLOCK)
        if not block:
            return  # no end-of-archive marker: tolerated, like tar and tarfile do
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.EOFHeaderError:
            return
        except tarfile.HeaderError as exc:
            raise ChecksumMismatch(f"{label} is truncated or corrupt ({exc}); download it again") from exc
        headers += 1
        if headers > MAX_HEADERS:
            raise UnsafeArchive(f"{label}: more than {MAX_HEADERS} tar headers; not an adapter archive")
        if info.type == tarfile.XGLTYPE:
            raise UnsafeArchive(f"{label}: refusing a global tar header; `mochi pack` writes none")
        if info.type in _EXTENDED:
            limit = MAX_NAME_BYTES if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) \
                else MAX_HEADER_BYTES
            if info.size > limit:
                raise UnsafeArchive(f"{label}: an extended tar header declares {info.size} bytes, over the "
                                    f"{limit}-byte limit; not an adapter archive")
            payload = stream.exactly(_padded(info.size))
            if len(payload) < _padded(info.size):
                raise ChecksumMismatch(f"{label} is truncated or corrupt (it ends inside a tar header); "
                                       "download it again")
            payload = payload[: info.size]
            if info.type == tarfile.GNUTYPE_LONGNAME:
                pending["path"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif info.type == tarfile.GNUTYPE_LONGLINK:
                pending["linkpath"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                pending.update(_pax_records(payload, label))
            continue
        members += 1
        if members > MAX_MEMBERS:
            raise UnsafeArchive(f"{label}: more than {MAX_MEMBERS} entries; not an adapter archive")
        _apply(info, pending, label)
        pending = {}
        _check_name_size(info.name, label)
        if info.isreg() and info.size > max_bytes:
            raise UnsafeArchive(f"{label}: member {_shown(info.name)} declares {info.size} bytes, over the "
                                f"{max_bytes}-byte cap (raise it with --max-mb if this adapter is really that large)")
        yield info


def _apply(info: tarfile.TarInfo, pax: dict[str, str], label: str) -> None:
    """What tarfile does with the pending extended header: path, linkpath and size override."""
    if any(k.startswith("GNU.sparse") for k in pax):
        raise UnsafeArchive(f"{label}: refusing sparse file {_shown(info.name)}; `mochi pack` writes plain files")
    for key in ("path", "linkpath"):
        if key in pax:
            _check_name_size(pax[key], label)
    if "path" in pax:
        info.name = pax["path"]
    if "linkpath" in pax:
        info.linkname = pax["linkpath"]
    if "size" in pax:
        if not pax["size"].isdigit():
            raise ChecksumMismatch(f"{label} is truncated or corrupt (bad size in a tar header); download it again")
        info.size = int(pax["size"])
    if not info.isreg():
        info.size = 0  # tarfile reads no data after links, folders and devices either


def safe_extract(archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Extract ``archive`` into the empty folder ``dest``; return ``{file name: sha256}``.

    Raises:
        UnsafeArchive: a member that is not a plain regular file, oversized headers or names, too
            many members, or sizes over ``max_bytes``.
        ChecksumMismatch: the archive is truncated or corrupt (gzip/tar stream ends early).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    label = archive.name
    digests: dict[str, str] = {}
    total = 0
    try:
        with gzip.open(archive, "rb") as raw:
            stream = _Limited(raw, max_bytes + _HEADER_ALLOWANCE, label)
            for member in _headers(stream, label, max_bytes):
                name = _member_name(member, label)
                if name is None:
                    continue
                if name in digests:
                    raise UnsafeArchive(f"{label}: member {name!r} appears twice")
                total += member.size
                if total > max_bytes:
                    raise UnsafeArchive(
                        f"{label}: member {name!r} declares {member.size} bytes, over the {max_bytes}-byte cap "
                        "(raise it with --max-mb if this adapter is really that large)"
                    )
                digests[name] = _copy_member(stream, member, dest / name, label)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        if isinstance(exc, (FileExistsError, PermissionError)):
            raise
        raise ChecksumMismatch(f"{label} is truncated or corrupt ({exc}); download it again") from exc
    return digests


def _copy_member(stream: _Limited, member: tarfile.TarInfo, target: Path, label: str) -> str:
    """Copy the member's ``size`` bytes (then skip its padding) into ``target``; return its sha256."""
    digest = hashlib.sha256()
    written = 0
    with open(target, "xb") as out:
        while written < member.size:
            block = stream.read(min(member.size - written, 1 << 20))
            if not block:
                raise ChecksumMismatch(f"{label} is truncated or corrupt: {_shown(member.name)} ends after {written} of "
                                       f"{member.size} bytes; download it again")
            written += len(block)
            digest.update(block)
            out.write(block)
    stream.exactly(_padded(member.size) - member.size)
    return digest.hexdigest()
