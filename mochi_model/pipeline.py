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
    before_engine_ms: float = 0.0  # from ``started`` (the user's request) to the engine call

    @property
    def snippets(self) -> list[Snippet]:
        return self.request.snippets

    def timings(self) -> dict[str, float | int | str]:
        """Where the request's time went, llama.vim-style (the LSP sends it in ``mochi/status``)."""
        c = self.completion

        def num(key: str) -> float:
            v = c.extra.get(key, 0)
            return float(v) if isinstance(v, int | float) else 0.0

        return {"before_engine_ms": round(self.before_engine_ms, 1), "wait_ms": round(num("wait_ms"), 1),
                "fit_ms": round(num("fit_ms"), 1), "prefill_ms": round(c.prefill_ms, 1),
                "decode_ms": round(c.decode_ms, 1), "engine_ms": round(c.total_ms, 1),
                "snippets": len(self.request.snippets),
                "prompt_tokens": c.prompt_tokens, "cached_tokens": c.cached_tokens,
                "completion_tokens": c.completion_tokens, "prompt_fit": int(num("prompt_fit")),
                "finish_reason": c.finish_reason}


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
                    recent: Sequence[Snippet] = (), time_budget_s: float | None = None) -> FimRequest:
    """Step 1 alone (prompt assembly), for callers that only need the prompt (warm-up, benches).

    With ``time_budget_s``, an engine that knows its prefill speed (``prefill_capacity``) tells
    whether snippets could run in time at all; if not, retrieval is skipped (see ``build_fim_request``).
    """
    if not language and path:
        from mochi_index.languages import language_for_path

        language = language_for_path(path) or ""
    capacity = getattr(engine, "prefill_capacity", None)  # not part of the Engine protocol
    room = capacity(time_budget_s) if time_budget_s and capacity is not None else None
    return build_fim_request(text, offset, path=path, language=language, index=index,
                             config=config or CompletionSection(), count_tokens=engine.count_tokens,
                             recent=recent, prefill_room=room)


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
    if time_budget_s is _UNSET:
        time_budget_s = cfg.time_budget_ms / 1000 if cfg.time_budget_ms else None

    def engine_budget() -> tuple[float | None, float]:
        """The engine's share of the budget now, and the seconds spent since ``started``."""
        spent = max(0.0, time.perf_counter() - started) if started is not None else 0.0
        if time_budget_s and started is not None:
            return max(time_budget_s - spent, time_budget_s * MIN_ENGINE_SHARE), spent
        return time_budget_s, spent

    request = prepare_request(engine, text, offset, path=path, language=language, index=index, config=cfg,
                              recent=recent, time_budget_s=engine_budget()[0])
    multiline = multiline_mode(cfg, request)
    request.multiline = multiline
    budget_s, spent = engine_budget()
    stop = ("\n",) if max_lines == 1 else ()
    result = engine.complete_fim(request.prefix, request.suffix, request.snippets,
                                 max_tokens=max_tokens or cfg.max_tokens, stop=stop,
                                 temperature=cfg.temperature, multiline=multiline, cancel=cancel,
                                 time_budget_s=budget_s, path=request.path, language=request.language)
    out = result.text
    if max_lines is not None:
        out = "\n".join(out.split("\n")[:max_lines])
    return PipelineResult(text=out, finish_reason=result.finish_reason, multiline=multiline, request=request,
                          completion=result, before_engine_ms=spent * 1000)
