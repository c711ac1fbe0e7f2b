"""Typed, fully-defaulted project configuration (``.mochi/config.toml``).

Precedence: TOML file → overrides (CLI flags, LSP ``initializationOptions``) → defaults.
Every key has a default, so an empty or missing file is a valid config. Bad values are
collected as *problems*: servers log them and keep the default (``strict=False``), the CLI
reports them as one :class:`ConfigError` (``strict=True``).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_core.errors import ConfigError
from mochi_core.paths import config_path

DEFAULT_LANGUAGES = ["python", "typescript", "tsx", "javascript", "go", "rust", "java"]


@dataclass(kw_only=True)
class ProjectSection:
    name: str = field(default="", metadata={"help": "Project name used to match installed adapters (default: folder or git remote name)."})


@dataclass(kw_only=True)
class IndexSection:
    languages: list[str] = field(default_factory=lambda: list(DEFAULT_LANGUAGES), metadata={"help": "Languages to index."})
    include: list[str] = field(default_factory=list, metadata={"help": "Gitignore-style globs; when set, only matching files are indexed."})
    exclude: list[str] = field(default_factory=list, metadata={"help": "Gitignore-style globs never indexed (added to .gitignore/.mochiignore)."})
    max_file_kb: int = field(default=512, metadata={"help": "Files larger than this are skipped (counted as too_large)."})
    chunk_tokens: int = field(default=256, metadata={"help": "Upper bound on a retrieval chunk, in approximate tokens."})


@dataclass(kw_only=True)
class ModelSection:
    preset: str = field(default="qwen2.5-coder-0.5b", metadata={"help": "Model preset (see `mochi models`)."})
    path: str = field(default="", metadata={"help": "A local HF folder, GGUF file or hub repo id; overrides the preset's source."})
    backend: str = field(default="auto", metadata={"help": "What runs the model: auto (MLX on Apple Silicon; llama.cpp for GGUF models on other CPUs when llama-cpp-python is installed; else torch), torch, mlx, llama, or remote (a server at remote_url)."})
    device: str = field(default="auto", metadata={"help": "torch device: auto | cpu | cuda | cuda:N | mps"})
    dtype: str = field(default="auto", metadata={"help": "Weight precision; auto = bfloat16 where the hardware supports it (fp16 on CUDA without bf16)."})
    remote_url: str = field(default="", metadata={"help": "OpenAI-compatible completions server for backend = remote."})
    remote_server: str = field(default="openai", metadata={"help": "How the remote server names adapters: openai | vllm | llama.cpp | mlx_lm"})
    remote_model: str = field(default="", metadata={"help": "Model name sent to the remote server (default: [model] path or the preset's hub id)."})
    remote_adapter: str = field(default="", metadata={"help": "Merged adapter the remote server applies per request (see `mochi adapters merge`)."})


@dataclass(kw_only=True)
class AdapterEntry:
    name: str = field(default="", metadata={"help": "Installed adapter name (see `mochi list`)."})
    version: str = field(default="", metadata={"help": "Installed version; empty = newest."})
    path: str = field(default="", metadata={"help": "Adapter folder; wins over name/version."})
    weight: float = field(default=1.0, metadata={"help": "Stack weight w_i in y = Wx + sum_i w_i s_i B_i A_i x."})
    role: str = field(default="project", metadata={"help": "base (a team/language adapter stacked under) or project (this codebase)."})


@dataclass(kw_only=True)
class CompletionSection:
    max_tokens: int = field(default=64, metadata={"help": "Most tokens generated per completion."})
    multiline: str = field(default="auto", metadata={"help": "Multi-line suggestions: auto decides from the cursor line, always, or never (one line)."})
    debounce_ms: int = field(default=120, metadata={"help": "LSP: wait this long after the last keystroke before generating."})
    time_budget_ms: int = field(default=2000, metadata={"help": "Stop generating after this long (LSP: counted from the request, debounce and retrieval included, and a wait for a warm-up; the model keeps at least half)."})
    prefix_tokens: int = field(default=1024, metadata={"help": "Token budget for code before the cursor."})
    suffix_tokens: int = field(default=128, metadata={"help": "Token budget for code after the cursor (re-read on every keystroke: FIM puts it after the prefix)."})
    context_tokens: int = field(default=768, metadata={"help": "Token budget for retrieved project context."})
    retrieval: list[str] = field(default_factory=lambda: ["imports", "definitions", "similar"], metadata={"help": "Retrieval ingredients: imports (what the file's imports name, resolved to project files), definitions (of identifiers near the cursor), similar (BM25 code chunks and the lines after them)."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy."})
    grow_when_idle: bool = field(default=True, metadata={"help": "LSP: after a suggestion whose prompt was shrunk to fit the time budget, prefill the next bigger prompt in the background, so the next suggestion at that place sees more context (cut short by your next keystroke; costs idle CPU)."})


@dataclass(kw_only=True)
class ServerSection:
    index_on_start: bool = field(default=True, metadata={"help": "Index the workspace in the background when no index exists."})
    log_usage: bool = field(default=True, metadata={"help": "Record shown/accepted suggestions in .mochi/usage/ (never leaves the machine)."})
    enabled_languages: list[str] = field(default_factory=list, metadata={"help": "LSP: languages that get completions (empty = all indexed languages)."})
    adapter_check_s: float = field(default=15.0, metadata={"help": "LSP and MCP: look at most this often (seconds, on requests) for a changed adapter stack (a newer installed version, a rewritten adapters.safetensors) and swap it in without a restart; 0 = never."})


@dataclass(kw_only=True)
class MochiConfig:
    project: ProjectSection = field(default_factory=ProjectSection)
    index: IndexSection = field(default_factory=IndexSection)
    model: ModelSection = field(default_factory=ModelSection)
    adapters: list[AdapterEntry] = field(default_factory=list)
    completion: CompletionSection = field(default_factory=CompletionSection)
    server: ServerSection = field(default_factory=ServerSection)


_CHOICES: dict[str, tuple[str, ...]] = {
    "model.backend": ("auto", "torch", "mlx", "llama", "remote"),
    "model.dtype": ("auto", "float32", "bfloat16", "float16"),
    "model.remote_server": ("openai", "vllm", "llama.cpp", "mlx_lm"),
    "completion.multiline": ("auto", "always", "never"),
    "completion.retrieval": ("imports", "definitions", "similar"),
    "adapters.role": ("base", "project"),
}


def _check_scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(f"{where}: must be >= 0, got {value}")
            return value
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            choices = _CHOICES.get(_strip_index(where))
            if choices and value not in choices:
                raise ValueError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
            return value
        raise ValueError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r}")


def _strip_index(where: str) -> str:
    # "adapters[1].role" -> "adapters.role"
    return re.sub(r"\[\d+\]", "", where)


def _build(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from ``data``; bad fields keep their default and add a problem."""
    obj = cls()
    if data is None:
        return obj
    if not isinstance(data, dict):
        problems.append(f"{where or 'config'}: expected a table, got {data!r}")
        return obj
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            problems.append(f"{path}: unknown key (known: {', '.join(sorted(known))})")
            continue
        tp = hints[key]
        try:
            setattr(obj, key, _convert(tp, value, path, problems))
        except ValueError as exc:
            problems.append(str(exc))
    return obj


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, problems)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected a list, got {value!r}")
        return [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in config")
    return _check_scalar(value, tp, path)


def config_from_dict(data: dict[str, Any], *, base: MochiConfig | None = None) -> tuple[MochiConfig, list[str]]:
    """Build a config from nested dicts (parsed TOML, LSP settings), layered over ``base``.

    Returns the config and a list of human-readable problems (empty when all is well).
    """
    problems: list[str] = []
    merged = _deep_merge(to_dict(base) if base else {}, data or {})
    cfg = _build(MochiConfig, merged, "", problems)
    for i, entry in enumerate(cfg.adapters):
        if not entry.name and not entry.path:
            problems.append(f"adapters[{i}]: needs a name or a path")
    cfg.adapters = [a for a in cfg.adapters if a.name or a.path]
    return cfg, problems


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def load_config(root: Path, *, strict: bool = False) -> tuple[MochiConfig, list[str]]:
    """Load ``<root>/.mochi/config.toml`` (missing file = defaults).

    Args:
        root: project root.
        strict: raise :class:`ConfigError` listing every problem instead of falling back.

    Returns:
        ``(config, problems)``; with ``strict=False`` bad values keep their defaults.
    """
    path = config_path(root)
    data: dict[str, Any] = {}
    problems: list[str] = []
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path}: cannot parse ({exc}); using defaults")
    cfg, more = config_from_dict(data)
    problems += [f"{path}: {p}" for p in more]
    if strict and problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg, problems


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def render_config(cfg: MochiConfig) -> str:
    """Render a config as commented TOML (every key with its help text)."""
    lines = ["# Mochi project configuration. Every key is optional; shown values are the defaults", "# unless `mochi init` filled them in. Docs: README.md#configuration", ""]
    for f in dataclasses.fields(MochiConfig):
        section = getattr(cfg, f.name)
        if f.name == "adapters":
            lines.append("# Adapter stack: y = Wx + sum_i weight_i * scale_i * B_i A_i x")
            lines.append("# [[adapters]]\n# name = \"team-python\"\n# role = \"base\"\n# weight = 0.3\n")
            for entry in section:
                lines.append("[[adapters]]")
                lines += _render_fields(entry)
                lines.append("")
            continue
        lines.append(f"[{f.name}]")
        lines += _render_fields(section)
        lines.append("")
    return "\n".join(lines)


def _render_fields(obj: Any) -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        help_ = f.metadata.get("help")
        if help_:
            out.append(f"# {help_}")
        out.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
    return out


def write_config(root: Path, cfg: MochiConfig) -> Path:
    path = config_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(cfg), encoding="utf-8")
    return path
