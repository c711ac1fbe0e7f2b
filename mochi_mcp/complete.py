"""``complete_code``: fill-in-the-middle completion, prompt and post-processing shared with the LSP.

The prompt comes from :func:`mochi_model.context.build_fim_request` (the same windows and index
context the editor gets) and the engine's ``complete_fim`` post-processes the answer, so a client
sees what an editor would show at the same cursor.
"""

from __future__ import annotations

from typing import Any

from mochi_mcp.errors import BadToolInput
from mochi_mcp.generation import Limits, complete
from mochi_mcp.workspace import LANGUAGES, Workspace, language_for
from mochi_model.context import build_fim_request
from mochi_model.types import Engine

KNOWN_LANGUAGES = frozenset(LANGUAGES.values())
MULTILINE = {"auto": None, "always": True, "never": False}


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
    cfg = ws.config.completion
    index = ws.index(required=False)
    request = build_fim_request(prefix + suffix, len(prefix), path=rel, language=lang, index=index, config=cfg,
                                count_tokens=engine.count_tokens)
    result = complete(engine, request.prefix, request.suffix, request.snippets,
                      max_tokens=max_tokens or cfg.max_tokens, temperature=cfg.temperature,
                      multiline=MULTILINE.get(cfg.multiline) if request.multiline is None else request.multiline,
                      path=rel, language=lang, limits=limits or Limits())
    return {
        "completion": result.text,
        "finish_reason": result.finish_reason,
        "language": lang,
        "path": rel,
        "indexed": index is not None,
        "context": [f"{s.kind}:{s.path}" for s in request.snippets],
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
    }
