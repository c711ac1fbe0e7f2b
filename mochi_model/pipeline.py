"""The one completion pipeline: document + cursor → prompt → engine → post-processed completion.

Every edge calls :func:`complete_document` and nothing else: the LSP (ghost text), MCP
``complete_code``, ``mochi complete``, ``mochi eval`` and the benches. So what the eval measures is,
byte for byte, the prompt and the completion a user gets at the same cursor with the same
configuration (``tests/protocol/mcp/test_pipeline_equality.py`` proves it for the four edges).

The steps, each decided here once:

1. prompt assembly — :func:`mochi_model.context.build_fim_request` cuts token-budgeted windows
   (the ``[completion]`` budgets, counted with the engine's tokenizer) and retrieves project context
   from the index;
2. single- or multi-line — ``[completion] multiline`` (``auto`` looks at the cursor line);
3. the engine call — max tokens, temperature, time budget, cancellation;
4. post-processing happens inside the engine (suffix overlap, bracket balance, block end).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mochi_core.config import CompletionSection
from mochi_core.errors import MochiError
from mochi_model.context import FimRequest, build_fim_request
from mochi_model.postprocess import decide_multiline
from mochi_model.types import CancelToken, Completion, Engine, Snippet

MAX_DOCUMENT_CHARS = 2_000_000  # larger documents get no completions (and no slow slicing)
#: With ``started``, the engine keeps at least this share of the time budget whatever came before.
MIN_ENGINE_SHARE = 0.5
_UNSET: Any = object()


class DocumentRejected(MochiError):
    """The document cannot be completed (binary, or too large)."""


@dataclass(kw_only=True)
class PipelineResult:
    """A completion with the prompt pieces that produced it."""

    text: str  # post-processed, ready to insert
    finish_reason: str
    multiline: bool
    request: FimRequest  # prefix/suffix windows and retrieved snippets, as sent to the engine
    completion: Completion

    @property
    def snippets(self) -> list[Snippet]:
        return self.request.snippets


def document_problem(text: str) -> str:
    """Why a document gets no completions (``""`` when it is fine)."""
    if len(text) > MAX_DOCUMENT_CHARS:
        return f"document too large ({len(text)} characters > {MAX_DOCUMENT_CHARS})"
    if "\x00" in text[:8192]:
        return "binary document"
    return ""


def multiline_mode(config: CompletionSection, request: FimRequest) -> bool:
    """``[completion] multiline``: ``always`` | ``never`` | ``auto`` (blank line or block opener)."""
    if config.multiline == "always":
        return True
    if config.multiline == "never":
        return False
    return decide_multiline(request.prefix, request.suffix)


def prepare_request(engine: Engine, text: str, offset: int, *, path: str = "", language: str = "",
                    index: Any = None, config: CompletionSection | None = None,
                    recent: Sequence[Snippet] = ()) -> FimRequest:
    """Step 1 alone (prompt assembly), for callers that only need the prompt (warm-up, benches)."""
    if not language and path:
        from mochi_index.languages import language_for_path

        language = language_for_path(path) or ""
    return build_fim_request(text, offset, path=path, language=language, index=index,
                             config=config or CompletionSection(), count_tokens=engine.count_tokens,
                             recent=recent)


def complete_document(
    engine: Engine,
    text: str,
    offset: int,
    *,
    path: str = "",
    language: str = "",
    index: Any = None,
    config: CompletionSection | None = None,
    recent: Sequence[Snippet] = (),
    cancel: CancelToken | None = None,
    max_tokens: int | None = None,
    time_budget_s: float | None = _UNSET,
    max_lines: int | None = None,
    started: float | None = None,
) -> PipelineResult:
    """Complete ``text`` at ``offset`` exactly as an editor user of this configuration would see it.

    Args:
        engine: the engine (adapter stack as configured).
        text: the whole document.
        offset: cursor offset in characters (clamped to the document).
        path: project-relative path (its own definitions are not retrieved); sets the language when
            ``language`` is empty.
        language: language name (``python``, ``typescript``, ...).
        index: the project's ``ProjectIndex`` (``None``: no retrieval).
        config: the ``[completion]`` section (budgets, multiline, max tokens, time budget).
        recent: snippets of recently viewed/edited code the caller keeps (the LSP's ring buffer).
        cancel: checked by the engine between tokens.
        max_tokens: overrides ``config.max_tokens`` (MCP's and the CLI's ``max_tokens``).
        time_budget_s: overrides ``config.time_budget_ms`` (``None`` = no budget; MCP passes its
            tool timeout).
        max_lines: stop decoding after this many lines. Only the eval uses it (``1`` for next-line
            holes): decoding is greedy, so the first line is the first line of what users see.
        started: ``time.perf_counter()`` when the user asked (the LSP: the request's arrival, before
            its debounce). The time budget then covers what the user waits for before decoding too
            (debounce, retrieval, prompt assembly), not only the engine's part; a wait for the
            engine lock still does not count (the engine's clock starts when its turn comes), and
            the engine always keeps :data:`MIN_ENGINE_SHARE` of the budget.

    Raises:
        DocumentRejected: binary or too-large document.
    """
    cfg = config or CompletionSection()
    problem = document_problem(text)
    if problem:
        raise DocumentRejected(problem)
    request = prepare_request(engine, text, offset, path=path, language=language, index=index, config=cfg,
                              recent=recent)
    multiline = multiline_mode(cfg, request)
    request.multiline = multiline
    if time_budget_s is _UNSET:
        time_budget_s = cfg.time_budget_ms / 1000 if cfg.time_budget_ms else None
    if time_budget_s and started is not None:
        spent = max(0.0, time.perf_counter() - started)
        time_budget_s = max(time_budget_s - spent, time_budget_s * MIN_ENGINE_SHARE)
    stop = ("\n",) if max_lines == 1 else ()
    result = engine.complete_fim(request.prefix, request.suffix, request.snippets,
                                 max_tokens=max_tokens or cfg.max_tokens, stop=stop,
                                 temperature=cfg.temperature, multiline=multiline, cancel=cancel,
                                 time_budget_s=time_budget_s, path=request.path, language=request.language)
    out = result.text
    if max_lines is not None:
        out = "\n".join(out.split("\n")[:max_lines])
    return PipelineResult(text=out, finish_reason=result.finish_reason, multiline=multiline, request=request,
                          completion=result)
