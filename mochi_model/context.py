"""Prompt assembly for completions: document + cursor → prefix/suffix windows + retrieved snippets.

Called through :mod:`mochi_model.pipeline` by every edge (LSP, MCP, CLI, eval). The windows are
token-budgeted with the engine's tokenizer and cut so their front stays put while the user types;
the snippets come from :mod:`mochi_model.retrieval` (imports resolved to project files, definitions
of the identifiers in use, similar chunks). Definitions are shown compactly: classes as skeletons
(fields + method signatures), functions as signature + first docstring line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mochi_core.config import CompletionSection
from mochi_index.languages import language_for_path
from mochi_model.retrieval import (
    INGREDIENTS,
    definition_candidates,
    identifiers_in_use,
    import_candidates,
    last_mentions,
    pack,
    similar_candidates,
)
from mochi_model.types import Snippet

if TYPE_CHECKING:  # the index is optional at run time
    from mochi_index import ProjectIndex

_PARTIAL_WORD = re.compile(r"[A-Za-z0-9_]+\Z")
_RESERVE_STEP = 32  # tokens: the prefix window moves only when the cursor line grows past a multiple of this


@dataclass(kw_only=True)
class FimRequest:
    prefix: str
    suffix: str
    snippets: list[Snippet] = field(default_factory=list)
    path: str = ""
    language: str = ""
    multiline: bool | None = None


def _approx_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def build_fim_request(
    text: str,
    offset: int,
    *,
    path: str = "",
    language: str = "",
    index: ProjectIndex | Any | None = None,
    config: CompletionSection | None = None,
    count_tokens: Callable[[str], int] | None = None,
    recent: Sequence[Snippet] = (),
    prefill_room: int | None = None,
) -> FimRequest:
    """Cut ``text`` at ``offset`` into token-budgeted windows and attach project context.

    Args:
        text: the whole document.
        offset: cursor offset in characters.
        path: project-relative path (its own definitions are not repeated as context).
        language: language id.
        index: a ``ProjectIndex`` or anything with ``definitions``/``similar_chunks``
            (``mochi_model.data.local_index.LocalIndex``); ``None`` = no retrieval.
        config: budgets (prefix/suffix/context tokens).
        count_tokens: the engine's tokenizer count; a 4-chars-per-token estimate when absent.
        recent: snippets the caller already has (recently edited files), kept first.
        prefill_room: uncached prompt tokens the engine can prefill within the time budget
            (``Engine.prefill_capacity``). Snippets sit at the front of the prompt, before the whole
            prefix window, so when that window alone is bigger no prompt carrying them can run in
            time (:mod:`mochi_model.prompt_fit` would drop them): they are then not gathered at all,
            which saves the retrieval's time (measured: 0.1-0.4 s of a 2 s budget on a busy 2-core CPU).
    """
    cfg = config or CompletionSection()
    count = count_tokens or _approx_tokens
    offset = max(0, min(offset, len(text)))
    prefix, prefix_tokens = _prefix_window(text[:offset], cfg.prefix_tokens, count)
    suffix = _head_within(text[offset:], cfg.suffix_tokens, count)
    if prefill_room is not None and prefix_tokens > prefill_room:
        return FimRequest(prefix=prefix, suffix=suffix, snippets=[], path=path, language=language)
    snippets: list[Snippet] = list(recent)
    if index is not None and cfg.context_tokens > 0:
        # The word being typed is left out of the lookup: it is incomplete, and the snippets (which sit
        # at the front of the prompt) would change on every keystroke and defeat KV-cache reuse.
        before = _PARTIAL_WORD.sub("", text[:offset])
        snippets += retrieve_snippets(index, before, path=path, language=language,
                                      budget=cfg.context_tokens - sum(count(s.text) for s in recent), count=count,
                                      ingredients=cfg.retrieval)
    return FimRequest(prefix=prefix, suffix=suffix, snippets=snippets, path=path, language=language)


def retrieve_snippets(
    index: Any,
    before: str,
    *,
    path: str = "",
    language: str = "",
    budget: int = 768,
    count: Callable[[str], int] = _approx_tokens,
    similar: int = 4,
    ingredients: Sequence[str] = INGREDIENTS,
) -> list[Snippet]:
    """Project context for the code ``before`` the cursor, within ``budget`` tokens (see :mod:`mochi_model.retrieval`).

    Returns:
        One snippet per source file, least relevant first (so the best sits next to the hole).
    """
    if budget <= 0:
        return []
    mentions = last_mentions(before)
    lang = language or (language_for_path(path) or "" if path else "")
    candidates = []
    if "imports" in ingredients:
        candidates += import_candidates(index, before, path=path, language=lang,
                                        view=lambda s: _symbol_view(index, s), mentions=mentions)
    if "definitions" in ingredients:
        candidates += definition_candidates(index, before, path=path, view=lambda s: _symbol_view(index, s),
                                            has_body=lambda s: bool(_source(index, s)), mentions=mentions)
    if "similar" in ingredients and similar:
        classes = {c.key.split(":", 1)[1] for c in candidates if c.kind == "definition"}
        candidates += similar_candidates(
            index, before, path=path, limit=similar, exclude=classes, names=identifiers_in_use(before),
            read_lines=lambda path, start, end: _file_lines(index, path, start, end))
    return pack(candidates, budget, count)


def _symbol_view(index: Any, sym: Any) -> str:
    """A compact view of a definition: class skeleton, or signature + docstring summary."""
    body = _source(index, sym)
    if body and sym.kind == "class":
        return _class_skeleton(body)
    doc = sym.docstring.strip().split("\n\n")[0] if sym.docstring else ""
    text = sym.signature
    if doc and sym.language == "python":
        indent = re.match(r"\s*", sym.signature.splitlines()[-1]).group(0) + "    "
        text += f'\n{indent}"""{doc.splitlines()[0]}"""'
    return text


def _source(index: Any, sym: Any) -> str | None:
    """The definition's source lines."""
    return _file_lines(index, sym.path, sym.start_line, sym.end_line)


def _file_lines(index: Any, path: str, start: int, end: int) -> str | None:
    """Lines ``start..end`` (1-based, inclusive) of a project file: from the index when it keeps
    files, else from disk under its root."""
    source = getattr(index, "source", None)
    if callable(source):
        return source(path, start, end)
    root = getattr(index, "root", None)
    if root is None:
        return None
    try:
        with open(Path(root) / path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return "\n".join(lines[start - 1:end])


def _class_skeleton(body: str, max_lines: int = 40) -> str:
    """Keep a class's header, fields, decorators and method signatures; drop bodies and docstrings."""
    lines = body.splitlines()
    if len(lines) <= 12:
        return body
    head_indent = len(lines[0]) - len(lines[0].lstrip())
    member_indent = None
    out: list[str] = []
    in_sig = in_doc = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        ind = len(line) - len(line.lstrip())
        if member_indent is None and ind > head_indent:
            member_indent = ind
        if in_doc:
            in_doc = not (stripped.endswith(('"""', "'''")))
            continue
        if ind == member_indent and stripped.startswith(('"""', "'''", 'r"""')):
            quote = stripped.lstrip("r")[:3]
            in_doc = not (len(stripped) > 5 and stripped.endswith(quote))
            continue
        if ind <= head_indent or ind == member_indent or in_sig:
            out.append(line)
            in_sig = (in_sig or stripped.startswith(("def ", "async def "))) and not stripped.endswith(":")
        if len(out) >= max_lines:
            break
    return "\n".join(out)


def _prefix_window(before: str, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
    """The last ``budget`` tokens of ``before``, cut at a line start that stays put while the user types.

    The window over the lines above the cursor is chosen with room reserved for the cursor line in
    steps of :data:`_RESERVE_STEP` tokens, so typing on one line keeps the same first line (and the
    engine's cached keys/values) instead of dropping a line every few keystrokes.

    Returns:
        The window and its token count as the sum of its lines' counts (the tokenizer may merge
        across a line break, so it can differ from ``count(window)`` by a token or so per line).
    """
    start = before.rfind("\n") + 1
    head, line = before[:start], before[start:]
    line_tokens = count(line) if line else 0
    reserve = -(-line_tokens // _RESERVE_STEP) * _RESERVE_STEP
    if reserve >= budget:  # a very long cursor line: it alone fills the window
        tail = _tail_chars(line, budget, count)
        return tail, count(tail)
    window, used = _tail_within(head, budget - reserve, count) if head else ("", 0)
    return window + line, used + line_tokens


def _tail_chars(s: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest tail of one long line within ``budget`` tokens (binary search on characters)."""
    lo, hi = 0, len(s)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(s[mid:]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return s[lo:]


def _tail_within(s: str, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
    """The last lines of ``s`` within ``budget`` tokens (at least one), and their summed count."""
    out: list[str] = []
    used = 0
    for line in reversed(s.splitlines(keepends=True)):
        n = count(line)
        if used + n > budget and out:
            break
        out.append(line)
        used += n
    return "".join(reversed(out)), used


def _head_within(s: str, budget: int, count: Callable[[str], int]) -> str:
    out: list[str] = []
    used = 0
    for line in s.splitlines(keepends=True):
        used += count(line)
        if used > budget and out:
            break
        out.append(line)
    return "".join(out)
