"""Who is this project, and which base model is configured: the keys adapters are matched on.

* Project identity = normalised git remote URL (``github.com/acme/api`` for any of
  ``git@github.com:Acme/api.git``, ``https://user@github.com/acme/api``, ``ssh://git@github.com:22/acme/api.git``)
  plus a name (``[project] name`` in ``.mochi/config.toml``, else the root folder name).
  The git remote is read from ``.git/config`` directly: no ``git`` executable needed.
* Base model: the engine's normalised id plus the preset table, so an adapter trained on the hub model
  (``Qwen/Qwen2.5-Coder-0.5B-Instruct``) matches the preset name, its MLX conversion and its GGUF file.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from mochi_core.config import MochiConfig


@dataclass(frozen=True)
class ProjectIdentity:
    name: str
    git_remote: str  # normalised, "" when the project has no remote


def normalise_git_remote(url: str) -> str:
    """Reduce a git remote URL to ``host/path`` in lower case, without scheme, user, port or ``.git``."""
    url = url.strip()
    if not url:
        return ""
    scp = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", url)  # git@host:org/repo (scp-like syntax)
    if scp and "://" not in url:
        host, path = scp.group(1), scp.group(2)
    else:
        rest = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url)
        rest = rest.split("@", 1)[-1] if "@" in rest.split("/", 1)[0] else rest
        host, _, path = rest.partition("/")
        host = host.split(":", 1)[0]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return f"{host}/{path}".lower().rstrip("/")


def git_remote(root: Path) -> str:
    """The normalised URL of remote ``origin`` (else the first remote), or ``""``."""
    git_dir = _git_dir(Path(root))
    if git_dir is None:
        return ""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(git_dir / "config", encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return ""
    remotes = {
        s[len('remote "') : -1]: parser.get(s, "url", fallback="")
        for s in parser.sections()
        if s.startswith('remote "') and s.endswith('"')
    }
    url = remotes.get("origin") or next((u for u in remotes.values() if u), "")
    return normalise_git_remote(url)


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            git_dir = (root / text[len("gitdir:") :].strip()).resolve()
            common = git_dir / "commondir"
            if common.is_file():
                return (git_dir / common.read_text().strip()).resolve()
            return git_dir
    return None


def project_identity(config: MochiConfig, root: Path, name: str | None = None) -> ProjectIdentity:
    """The identity installed project adapters are matched against."""
    root = Path(root).resolve()
    chosen = name or config.project.name or root.name
    return ProjectIdentity(name=chosen, git_remote=git_remote(root))


def configured_base_model(config: MochiConfig) -> str:
    """The base model the project runs: ``[model] path`` if set, else the preset's canonical ``base_id``."""
    if config.model.path:
        return config.model.path
    from mochi_model.presets import PRESETS

    preset = PRESETS.get(config.model.preset.lower())
    return preset.base_id if preset else config.model.preset


def _preset_of(model_id: str) -> object | None:
    from mochi_model.presets import PRESETS, preset_for_model_id

    return PRESETS.get(model_id.strip().lower()) or preset_for_model_id(model_id)


def same_base_model(a: str, b: str) -> bool:
    """Whether two model ids/paths/preset names name the same base model.

    The engine's rule (:func:`mochi_model.adapters.format.normalize_model_id`, which it applies when
    loading a stack), widened by the preset table: ids of one preset (hub repo, MLX repo, GGUF file,
    preset name) all match. So install refuses exactly what the engine would refuse.
    """
    from mochi_model.adapters.format import normalize_model_id

    na, nb = normalize_model_id(a), normalize_model_id(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    pa = _preset_of(a)
    return pa is not None and pa is _preset_of(b)
