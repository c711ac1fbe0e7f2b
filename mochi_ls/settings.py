"""Editor settings → :class:`MochiConfig`.

Editors send settings through ``initializationOptions`` and ``workspace/didChangeConfiguration``.
Accepted shapes: the config's own nesting (``{"completion": {"max_tokens": 32}}``), the same
wrapped in ``{"mochi": ...}`` (VS Code sends its settings section), and camelCase keys
(``maxTokens``) as VS Code settings are written. Problems are returned, never raised: the server
shows them with ``window/showMessage`` and keeps the defaults for the bad keys.
"""

from __future__ import annotations

import re
from typing import Any

from mochi_core.config import MochiConfig, config_from_dict

# Keys that are not config but server switches (handled by the server itself), and the editor
# extension's own settings (VS Code's mochi.enable / mochi.command), which a client that sends its
# whole settings section includes.
SERVER_ONLY_KEYS = ("trace", "enable", "command")


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def normalize(data: Any) -> Any:
    """Recursively turn camelCase keys into snake_case."""
    if isinstance(data, dict):
        return {_snake(str(k)): normalize(v) for k, v in data.items()}
    if isinstance(data, list):
        return [normalize(v) for v in data]
    return data


def unwrap(options: Any) -> tuple[dict[str, Any], list[str]]:
    """Pull the Mochi settings out of what the editor sent."""
    if options is None:
        return {}, []
    if not isinstance(options, dict):
        return {}, [f"settings: expected an object, got {type(options).__name__}"]
    data = options.get("mochi", options)
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [f"settings.mochi: expected an object, got {type(data).__name__}"]
    data = {k: v for k, v in normalize(data).items() if k not in SERVER_ONLY_KEYS}
    return data, []


def settings_to_config(options: Any, base: MochiConfig) -> tuple[MochiConfig, list[str]]:
    """Layer the editor's settings over ``base`` (the project's config.toml).

    Returns:
        ``(config, problems)``; bad keys keep their value from ``base`` or the default.
    """
    data, problems = unwrap(options)
    if not data:
        return base, problems
    cfg, more = config_from_dict(data, base=base)
    return cfg, problems + more


def model_signature(cfg: MochiConfig) -> tuple[Any, ...]:
    """What, when changed, needs a model reload."""
    m = cfg.model
    adapters = tuple((a.name, a.version, a.path, a.weight, a.role) for a in cfg.adapters)
    return (m.preset, m.path, m.backend, m.device, m.dtype, m.remote_url, adapters)
