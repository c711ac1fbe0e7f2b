"""``complete_code``: fill-in-the-middle completion through the one pipeline the LSP uses.

:func:`mochi_model.pipeline.complete_document` builds the prompt (the same windows, budgets and
index context the editor gets), decides single/multi-line and post-processes, so a client sees
what an editor would show at the same cursor. Only the time budget differs: the tool's timeout.
"""

from __future__ import annotations

from typing import Any

from mochi_mcp.errors import BadToolInput
from mochi_mcp.generation import Limits, check_result
from mochi_mcp.workspace import LANGUAGES, Workspace, language_for
from mochi_model.pipeline import complete_document
from mochi_model.types import Engine

KNOWN_LANGUAGES = frozenset(LANGUAGES.values())


def complete_code(ws: Workspace, engine: Engine, *, prefix: str, suffix: str = "", file_path: str | None = None,
                  language: str | None = None, max_tokens: int | None = None,
                  limits: Limits | None = None) -> dict[str, Any]:
    """Complete the code between ``prefix`` and ``suffix``.

    ``file_path`` (optional, inside the project) names the file the code belongs to: it sets the
    language and keeps that file's own chunks out of the retrieved context. The index is used when
    it exists; without one the completion still works, from the windows alone.

    Returns:
        ``completion``, ``finish_reason``, ``language``, ``path``, ``context`` (snippet sources),
        ``indexed`` (whether project context was available) and token counts.

    Raises:
        BadToolInput, PathOutsideProject, GenerationTimeout.
    """
    if prefix is None or (not prefix and not suffix):
        raise BadToolInput("prefix is empty: pass the code before the cursor (and suffix for the code after it)")
    rel = ""
    if file_path:
        full = ws.resolve(file_path)
        rel = ws.relative(full)
    lang = (language or "").strip().lower() or language_for(rel)
    if lang and lang not in KNOWN_LANGUAGES:
        raise BadToolInput(f"unknown language {language!r}; use one of {', '.join(sorted(KNOWN_LANGUAGES))} "
                           "or leave it out")
    limits = limits or Limits()
    index = ws.index(required=False)
    out = complete_document(engine, prefix + suffix, len(prefix), path=rel, language=lang, index=index,
                            config=ws.config.completion, cancel=limits.cancel, max_tokens=max_tokens,
                            time_budget_s=limits.timeout_s)
    result = check_result(out.completion, limits, "completion")
    return {
        "completion": out.text,
        "finish_reason": result.finish_reason,
        "language": lang,
        "path": rel,
        "indexed": index is not None,
        "context": [f"{s.kind}:{s.path}" for s in out.snippets],
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
    }
