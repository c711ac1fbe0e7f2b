"""Who is this project, and which base model is configured: the keys adapters are matched on.

* Project identity = normalised git remote URL (``github.com/acme/api`` for any of
  ``git@github.com:Acme/api.git``, ``https://user@github.com/acme/api``, ``ssh://git@github.com:22/acme/api.git``)
  plus a name (``[project] name`` in ``.mochi/config.toml``, else the root folder name).
  The git remote is read from ``.git/config`` directly: no ``git`` executable needed.
* Base model key = a model id reduced to family + size (``qwen2.5-coder-0.5b`` for the preset name,
  ``Qwen/Qwen2.5-Coder-0.5B``, ``...-Instruct`` or a ``...-q4_k_m.gguf`` file), so an adapter trained on
  the hub model matches the same model loaded from a local GGUF or MLX conversion.
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


_SUFFIXES = re.compile(
    r"(-(instruct|base|chat|it|gguf|mlx|hf)|[-.](q\d[\w]*|iq\d[\w]*|f16|bf16|fp16|f32|\d+bit|awq|gptq))+$"
)


def base_model_key(model_id: str) -> str:
    """Reduce a model id, path or preset name to a comparable key (family + size)."""
    text = model_id.strip().rstrip("/")
    if not text:
        return ""
    text = text.replace("\\", "/").split("/")[-1].lower()
    if text.endswith(".gguf"):
        text = text[: -len(".gguf")]
    previous = None
    while previous != text:
        previous = text
        text = _SUFFIXES.sub("", text)
    return text


def configured_base_model(config: MochiConfig) -> str:
    """The base model the project is configured to run (``model.path`` wins over ``model.preset``)."""
    return config.model.path or config.model.preset


def same_base_model(a: str, b: str) -> bool:
    """Whether two model ids/paths/presets name the same base model (see :func:`base_model_key`)."""
    ka, kb = base_model_key(a), base_model_key(b)
    return bool(ka) and ka == kb
