"""The ``--adapter SPEC[:WEIGHT]`` option shared by `mochi complete`, `mochi lsp` and `mochi adapters merge`.

SPEC is an adapter folder or an installed adapter (``NAME`` / ``NAME@VERSION``, see `mochi list`);
WEIGHT is its stack weight (default 1.0).
"""

from __future__ import annotations

from pathlib import Path

import typer


def split_weight(spec: str) -> tuple[str, float]:
    """``"acme@1.2:0.3"`` → ``("acme@1.2", 0.3)``; no (numeric) weight → 1.0."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail.replace(".", "", 1).replace("-", "", 1).isdigit():
        return head, float(tail)
    return spec, 1.0


def parse_adapter_options(specs: list[str] | None, root: Path) -> list[tuple[Path, float]] | None:
    """Resolve the flags to ``(folder, weight)`` pairs; None (let the loader choose) when none were given."""
    if not specs:
        return None
    from mochi_core.errors import MochiError
    from mochi_model.dist.autodetect import resolve_adapter_spec

    out = []
    for spec in specs:
        name, weight = split_weight(spec)
        try:
            out.append((resolve_adapter_spec(name, root), weight))
        except MochiError as exc:
            raise typer.BadParameter(str(exc), param_hint="--adapter") from exc
    return out
