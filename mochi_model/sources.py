"""Where model weights come from: hub repo id, local HF folder, local GGUF file, or the offline source.

:func:`resolve_model` turns a preset name or a ``[model] path`` into a :class:`ResolvedModel` and says
which source was used. Hub downloads go through ``huggingface_hub`` (safetensors and tokenizer files
only; the commit sha is recorded as the revision). When the hub cannot be reached, a preset with an
offline source falls back to it (pinned sha256, see :mod:`mochi_model.offline`).

GGUF files are de-quantized once by transformers (``gguf_file=``) and saved as a normal HF folder
under ``models_cache()/converted/`` (:func:`convert_gguf`), so later loads take seconds.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mochi_core.paths import models_cache
from mochi_model.errors import BackendUnavailable, ModelNotFound
from mochi_model.presets import Preset, get_preset, preset_for_model_id

logger = logging.getLogger(__name__)
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
SOURCE_FILE = "mochi_source.json"


@dataclass(kw_only=True)
class ResolvedModel:
    """A model we can load.

    Attributes:
        path: an HF folder (config.json + safetensors) or a ``.gguf`` file.
        model_id: canonical base id (what adapters record).
        revision: hub commit sha, or the sha256 of an offline/GGUF file when known.
        source: ``hub`` | ``local`` | ``gguf`` | ``offline``.
        preset: the matching preset, if any (FIM format, memory needs).
        note: why this source was used when it was not the first choice (e.g. the hub was unreachable).
    """

    path: Path
    model_id: str
    revision: str | None = None
    source: str = "local"
    preset: Preset | None = None
    note: str = ""

    @property
    def is_gguf(self) -> bool:
        return self.path.suffix == ".gguf"

    def describe(self) -> str:
        rev = f" @ {self.revision[:12]}" if self.revision else ""
        note = f", {self.note}" if self.note else ""
        return f"{self.model_id}{rev} from {self.source} ({self.path}{note})"


def _folder_model_id(folder: Path) -> tuple[str, str | None]:
    meta = folder / SOURCE_FILE
    if meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        return str(data.get("model_id") or folder.name), data.get("revision")
    preset = preset_for_model_id(folder.name)
    return (preset.base_id if preset else folder.name), None


def resolve_model(spec: str | None = None, *, preset: str | None = None, backend: str = "torch") -> ResolvedModel:
    """Resolve ``spec`` (folder, ``.gguf``, ``org/repo[@rev]``) or else ``preset`` to a loadable model.

    Raises:
        ModelNotFound: nothing at ``spec``, unknown preset, or the hub and offline source both failed.
    """
    if spec:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelNotFound(f"{path} has no config.json; point [model] path at an HF model folder or a .gguf")
            model_id, rev = _folder_model_id(path)
            return ResolvedModel(path=path, model_id=model_id, revision=rev, source="local",
                                 preset=preset_for_model_id(model_id))
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelNotFound(f"GGUF file {path} does not exist")
            p = preset_for_model_id(path.name)
            return ResolvedModel(path=path, model_id=p.base_id if p else path.stem, source="gguf", preset=p)
        if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
            repo, _, rev = spec.partition("@")
            return _from_hub(repo, rev or None, preset_for_model_id(repo))
        raise ModelNotFound(f"model {spec!r} is neither a folder, a .gguf file nor a hub repo id (org/name)")
    pre = get_preset(preset)
    repo = pre.repos.get(backend) or pre.repos.get("torch", "")
    try:
        if backend == "llama":  # llama.cpp loads GGUF files: the preset's GGUF repo, one quantization
            return _from_hub_gguf(pre)
        return _from_hub(repo, pre.revision.get(backend) or None, pre)
    except ModelNotFound as exc:
        if not pre.offline:
            raise
        from mochi_model.offline import OFFLINE_SOURCES, fetch

        # The reason is long (huggingface_hub's multi-line messages): details at -v, one line by the loader.
        logger.info("hub unavailable for %s, using the pinned offline source %s: %s", repo, pre.offline,
                    " ".join(str(exc).split()))
        gguf = fetch(pre.offline, progress=False)
        src = OFFLINE_SOURCES[pre.offline]
        return ResolvedModel(path=gguf, model_id=pre.base_id, revision=src.sha256, source="offline", preset=pre,
                             note="hub unreachable; -v for details")


def local_copies(preset: Preset, backend: str = "torch") -> list[str]:
    """Which copies of ``preset``'s weights this machine already has, without downloading or hashing.

    ``"hub"``: its repo for ``backend`` in the Hugging Face cache; ``"offline GGUF"``: the pinned offline
    file (right size) in :func:`models_cache`; ``"converted"``: that file's de-quantized HF folder.
    """
    found = []
    repo = preset.repos.get(backend) or preset.repos.get("torch", "")
    try:
        from huggingface_hub import try_to_load_from_cache

        if repo and isinstance(try_to_load_from_cache(repo, "config.json"), str):
            found.append("hub")
    except ImportError:  # pragma: no cover - a core dependency
        pass
    if preset.offline:
        from mochi_model.offline import OFFLINE_SOURCES

        src = OFFLINE_SOURCES[preset.offline]
        gguf = models_cache() / src.filename
        if gguf.is_file() and gguf.stat().st_size == src.size:
            found.append("offline GGUF")
            if (converted_dir(gguf) / SOURCE_FILE).is_file():
                found.append("converted")
    return found


def _from_hub(repo: str, revision: str | None, preset: Preset | None) -> ResolvedModel:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise BackendUnavailable("huggingface_hub is missing; reinstall mochi-code") from exc
    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # hub errors are many (offline, 404, gated, network): all mean "not from hub"
        raise ModelNotFound(f"could not get {repo} from the Hugging Face hub: {type(exc).__name__}: {exc}") from exc
    if not any(folder.glob("*.safetensors")):
        raise ModelNotFound(f"{repo} has no safetensors weights (Mochi does not load pickled .bin files)")
    return ResolvedModel(path=folder, model_id=preset.base_id if preset else repo, revision=folder.name,
                         source="hub", preset=preset)


def _from_hub_gguf(preset: Preset) -> ResolvedModel:
    """The preset's GGUF file from the hub (``repos["llama"]`` = ``org/repo`` + ``gguf_files["llama"]``)."""
    repo, pattern = preset.repos.get("llama"), preset.gguf_file
    if not repo or not pattern:
        raise ModelNotFound(f"preset {preset.name} has no GGUF source for the llama backend")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo, revision=preset.revision.get("llama") or None, allow_patterns=[pattern]))
    except Exception as exc:  # hub errors are many (offline, 404, gated, network): all mean "not from hub"
        raise ModelNotFound(f"could not get {repo}/{pattern} from the Hugging Face hub: {type(exc).__name__}: {exc}") from exc
    files = sorted(folder.glob(pattern))  # split files: llama.cpp opens the first and finds the rest
    if not files:
        raise ModelNotFound(f"{repo} has no file matching {pattern}")
    return ResolvedModel(path=files[0], model_id=preset.base_id, revision=folder.name, source="hub", preset=preset)


def _dequantize_kwargs(gguf: Path) -> dict[str, object]:
    """Newer transformers keep GGUF weights packed unless asked to de-quantize (we save a plain folder)."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always de-quantize
        return {}
    return {"quantization_config": GgufConfig(gguf_file=gguf.name, dequantize=True)}


def converted_dir(gguf: Path) -> Path:
    gguf = Path(gguf)
    return models_cache() / "converted" / f"{gguf.stem}-{gguf.stat().st_size}"


def convert_gguf(model: ResolvedModel, *, dtype: str = "bfloat16") -> ResolvedModel:
    """De-quantize a GGUF once into an HF folder (cached); returns the folder as a local model."""
    gguf = model.path
    out = converted_dir(gguf)
    if (out / SOURCE_FILE).is_file():
        return ResolvedModel(path=out, model_id=model.model_id, revision=model.revision, source=model.source,
                             preset=model.preset, note=model.note)
    try:
        import torch
        from filelock import FileLock
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailable.missing_extra("torch (GGUF conversion)", "torch", exc) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / SOURCE_FILE).is_file():
            logger.warning("converting %s to a %s HF folder once (takes about a minute)", gguf.name, dtype)
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            hf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=getattr(torch, dtype), **_dequantize_kwargs(gguf))
            if getattr(hf.config, "quantization_config", None) is not None:
                del hf.config.quantization_config
            hf.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / SOURCE_FILE).write_text(json.dumps({"model_id": model.model_id, "revision": model.revision,
                                                       "converted_from": str(gguf), "dtype": dtype}, indent=2))
            tmp.replace(out)
    return ResolvedModel(path=out, model_id=model.model_id, revision=model.revision, source=model.source,
                         preset=model.preset, note=model.note)
