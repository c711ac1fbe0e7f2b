"""Prompt assembly for completions: document + cursor → prefix/suffix windows + retrieved snippets.

Minimal first version (windows only, plus index definitions when an index is given); the
training/eval issue owns and improves it. Shared by the LSP, MCP `complete_code` and eval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mochi_core.config import CompletionSection
from mochi_model.types import Snippet

if TYPE_CHECKING:  # the index is optional at run time
    from mochi_index import ProjectIndex


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
    index: ProjectIndex | None = None,
    config: CompletionSection | None = None,
    count_tokens: Callable[[str], int] | None = None,
    recent: Sequence[Snippet] = (),
) -> FimRequest:
    """Cut ``text`` at ``offset`` into token-budgeted windows and attach project context."""
    cfg = config or CompletionSection()
    count = count_tokens or _approx_tokens
    offset = max(0, min(offset, len(text)))
    prefix = _tail_within(text[:offset], cfg.prefix_tokens, count)
    suffix = _head_within(text[offset:], cfg.suffix_tokens, count)
    snippets: list[Snippet] = list(recent)
    if index is not None:
        snippets += _index_snippets(index, prefix, path, language)
    return FimRequest(prefix=prefix, suffix=suffix, snippets=_budget(snippets, cfg.context_tokens, count),
                      path=path, language=language)


def _tail_within(s: str, budget: int, count: Callable[[str], int]) -> str:
    lines = s.splitlines(keepends=True)
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        used += count(line)
        if used > budget and out:
            break
        out.append(line)
    return "".join(reversed(out))


def _head_within(s: str, budget: int, count: Callable[[str], int]) -> str:
    out: list[str] = []
    used = 0
    for line in s.splitlines(keepends=True):
        used += count(line)
        if used > budget and out:
            break
        out.append(line)
    return "".join(out)


def _index_snippets(index: Any, prefix: str, path: str, language: str) -> list[Snippet]:
    import re

    names = list(dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", prefix[-1500:])))[-30:]
    out = []
    for sym in index.definitions(names, limit=8):
        if sym.path != path:
            out.append(Snippet(path=sym.path, text=sym.signature + ("\n" + sym.docstring if sym.docstring else ""),
                               kind="definition"))
    return out


def _budget(snippets: list[Snippet], budget: int, count: Callable[[str], int]) -> list[Snippet]:
    out, used = [], 0
    for s in snippets:
        n = count(s.text)
        if used + n > budget:
            continue
        out.append(s)
        used += n
    return out
