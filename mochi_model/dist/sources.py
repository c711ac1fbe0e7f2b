"""Where archives come from and go to: local paths, http(s), fsspec object stores, Hugging Face.

* local file or folder (a shared drive), ``file://``;
* ``http://`` / ``https://`` (standard library; an early close is detected by Content-Length);
* ``s3://``, ``gs://``, ``az://``/``abfs://`` and any other fsspec protocol, through the store's own
  package (extras ``mochi-code[s3]``, ``[gcs]``, ``[azure]``). Endpoint and credentials come from the
  store's usual environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...) or ``storage_options``;
* ``hf://ORG/REPO[/FILE][@REVISION]`` through huggingface_hub.

A source naming a folder/prefix holding exactly one ``*.mochi.tar.gz`` uses that archive.
Downloads are streamed to a temporary file with a byte cap; fetch never writes outside ``workdir``.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from typing import Any

from mochi_model.dist.archive import DEFAULT_MAX_BYTES
from mochi_model.dist.errors import SourceError
from mochi_model.dist.pack import ARCHIVE_SUFFIX

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}


def scheme_of(source: str) -> str:
    head, sep, _ = source.partition("://")
    return head.lower() if sep and len(head) > 1 else ""


def _copy_stream(read: Callable[[int], bytes], dest: Path, total: int | None, max_bytes: int,
                 progress: Progress | None, what: str) -> None:
    """Copy blocks from ``read`` into ``dest``; ``read`` should return what has arrived (``read1``), so
    a stall is reported with the bytes received so far rather than losing a half-filled block."""
    if total is not None and total > max_bytes:
        raise SourceError(f"{what} is {total} bytes, over the {max_bytes}-byte cap")
    done = 0
    with open(dest, "wb") as out:
        while True:
            try:
                block = read(1 << 20)
            except (HTTPException, OSError) as exc:
                raise SourceError(f"download of {what} was interrupted after {done} bytes ({exc}); try again") from exc
            if not block:
                break
            done += len(block)
            if done > max_bytes:
                raise SourceError(f"{what} exceeds the {max_bytes}-byte cap; refusing to download more")
            out.write(block)
            if progress:
                progress(done, total)
    if total is not None and done != total:
        raise SourceError(f"download of {what} was interrupted: got {done} of {total} bytes; try again")


def _fetch_http(url: str, workdir: Path, max_bytes: int, progress: Progress | None, timeout_s: float) -> Path:
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "adapter" + ARCHIVE_SUFFIX
    dest = workdir / name
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only, checked by caller
            length = resp.headers.get("Content-Length")
            _copy_stream(resp.read1, dest, int(length) if length else None, max_bytes, progress, url)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError) as exc:
        raise SourceError(f"cannot download {url}: {exc}") from exc
    return dest


def _filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    scheme = scheme_of(url)
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'mochi-code[{extra}]'" if extra else f"install the fsspec package for {scheme}://"
        raise SourceError(f"{scheme}:// needs an extra package: {hint} ({exc})") from exc
    except ValueError as exc:
        raise SourceError(f"unsupported source {url!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - each store (ftplib, botocore, aiohttp...) has its own error tree
        raise SourceError(f"cannot reach {url}: {_reason(exc)}") from exc
    return fs, path


def _reason(exc: BaseException) -> str:
    """One line for a store's error (botocore and aiohttp messages can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _pick_archive(names: list[str], where: str) -> str:
    archives = sorted(n for n in names if n.endswith(ARCHIVE_SUFFIX))
    if len(archives) != 1:
        found = ", ".join(a.rsplit("/", 1)[-1] for a in archives) or "none"
        raise SourceError(f"{where} must hold exactly one *{ARCHIVE_SUFFIX} (found: {found}); name the file")
    return archives[0]


def _fetch_fsspec(url: str, workdir: Path, max_bytes: int, progress: Progress | None,
                  storage_options: dict[str, Any] | None) -> Path:
    fs, path = _filesystem(url, storage_options)
    try:
        if fs.isdir(path):
            path = _pick_archive(fs.ls(path, detail=False), url)
        size = fs.size(path)
        dest = workdir / path.rstrip("/").rsplit("/", 1)[-1]
        with fs.open(path, "rb") as src:
            _copy_stream(src.read, dest, size, max_bytes, progress, url)
    except SourceError:
        raise
    except FileNotFoundError as exc:
        raise SourceError(f"{url} does not exist") from exc
    except (OSError, PermissionError) as exc:
        raise SourceError(f"cannot read {url}: {_reason(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - each store (ftplib, botocore, aiohttp...) has its own error tree
        raise SourceError(f"cannot reach {url}: {_reason(exc)}") from exc
    return dest


def _parse_hf(url: str) -> tuple[str, str, str | None]:
    rest = url[len("hf://") :]
    rest, _, revision = rest.partition("@")
    parts = [p for p in rest.split("/") if p]
    if len(parts) < 2:
        raise SourceError(f"{url}: expected hf://ORG/REPO[/FILE][@REVISION]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def _fetch_hf(url: str, workdir: Path) -> Path:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, filename, revision = _parse_hf(url)
    endpoint = os.environ.get("HF_ENDPOINT") or None  # a self-hosted hub mirror, read at call time
    try:
        if not filename:
            filename = _pick_archive(HfApi(endpoint=endpoint).list_repo_files(repo, revision=revision), url)
        local = hf_hub_download(repo, filename, revision=revision, local_dir=workdir, endpoint=endpoint)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise SourceError(f"cannot download {url} from Hugging Face: {_reason(exc)}") from exc
    except ValueError as exc:  # HFValidationError: a repo id or file name the hub refuses ('..', '--'...)
        raise SourceError(f"invalid source {url}: {_reason(exc)}; expected hf://ORG/REPO[/FILE][@REVISION]") from exc
    return Path(local)


def fetch(source: str, workdir: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, progress: Progress | None = None,
          storage_options: dict[str, Any] | None = None, timeout_s: float = 60.0) -> Path:
    """A local path to the archive (or unpacked folder) named by ``source``.

    Local sources are returned in place; remote ones are downloaded into ``workdir``. ``timeout_s``
    bounds each wait for http(s) data (connect, and any stall mid-download).

    Raises:
        SourceError: unreachable, missing, interrupted, over the cap, or a missing extra package.
    """
    scheme = scheme_of(source)
    if scheme in ("", "file"):
        path = Path(source[len("file://") :] if scheme == "file" else source).expanduser()
        if not path.exists():
            raise SourceError(f"{path} does not exist")
        if path.is_dir() and not (path / "manifest.json").exists():
            path = path / _pick_archive([p.name for p in path.iterdir()], str(path))
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    if scheme in ("http", "https"):
        return _fetch_http(source, workdir, max_bytes, progress, timeout_s)
    if scheme == "hf":
        return _fetch_hf(source, workdir)
    return _fetch_fsspec(source, workdir, max_bytes, progress, storage_options)


def upload(archive: Path, dest: str, *, storage_options: dict[str, Any] | None = None) -> str:
    """Copy ``archive`` to ``dest`` (a folder/prefix ending in ``/``, or a full file URL); return the URL.

    Raises:
        SourceError: the destination cannot be written.
    """
    archive = Path(archive)
    scheme = scheme_of(dest)
    target = dest + archive.name if dest.endswith("/") else dest
    if scheme in ("", "file"):
        path = Path(target[len("file://") :] if scheme == "file" else target).expanduser()
        if path.is_dir():
            path = path / archive.name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        shutil.copyfile(archive, partial)
        partial.replace(path)  # readers on a shared drive never see half a file
        return str(path)
    if scheme in ("http", "https"):
        request = urllib.request.Request(target, data=archive.read_bytes(), method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=300):  # noqa: S310
                pass
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            raise SourceError(f"cannot upload to {target}: {exc}") from exc
        return target
    if scheme == "hf":
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        repo, filename, revision = _parse_hf(target if not dest.endswith("/") else dest)
        try:
            HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).upload_file(path_or_fileobj=str(archive), path_in_repo=filename or archive.name,
                                repo_id=repo, revision=revision)
        except (HfHubHTTPError, OSError, ValueError) as exc:  # ValueError: HFValidationError (a bad repo id)
            raise SourceError(f"cannot upload to {dest}: {_reason(exc)}") from exc
        return f"hf://{repo}/{filename or archive.name}"
    fs, path = _filesystem(target, storage_options)
    try:
        fs.put_file(str(archive), path)
    except (OSError, PermissionError) as exc:
        raise SourceError(f"cannot upload to {target}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - each store (ftplib, botocore, aiohttp...) has its own error tree
        raise SourceError(f"cannot upload to {target}: {_reason(exc)}") from exc
    return target
