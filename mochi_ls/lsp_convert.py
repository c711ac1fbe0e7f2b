"""Converters between LSP types and Mochi's plain ones (`lsp_*` functions; no logic here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types

from mochi_index.languages import language_for_path
from mochi_ls.completer import Suggestion

ACCEPT_COMMAND = "mochi.accept"
STATUS_COMMAND = "mochi.status"

_WORD_TAIL = re.compile(r"[A-Za-z0-9_$]*$")

# LSP language ids → the names the index and config use.
_LANGUAGE_IDS = {
    "python": "python", "typescript": "typescript", "typescriptreact": "tsx", "javascript": "javascript",
    "javascriptreact": "javascript", "go": "go", "rust": "rust", "java": "java",
}


def lsp_language(language_id: str | None, uri: str) -> str:
    """Mochi language name from the client's languageId, else from the file extension."""
    if language_id and language_id in _LANGUAGE_IDS:
        return _LANGUAGE_IDS[language_id]
    return language_for_path(urlparse(uri).path) or language_id or ""


def lsp_uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return None
    return Path(unquote(parsed.path))


def lsp_relative_path(uri: str, root: Path | None) -> str:
    """Project-relative path with forward slashes ("" when outside the project)."""
    path = lsp_uri_to_path(uri)
    if path is None or root is None:
        return ""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return ""


def lsp_position_ok(lines: int, position: types.Position) -> bool:
    """False for positions the document cannot hold (negative, or past the last line)."""
    return 0 <= position.line <= lines and position.character >= 0


def lsp_clamp_position(lines: list[str], position: types.Position,
                       num_units: Callable[[str], int]) -> types.Position:
    """``position`` moved onto the text: a character past its line's end becomes the line's end.

    The LSP spec: "If the character value is greater than the line length it defaults back to the
    line length." (pygls clamps one unit short on a last line without a newline.) The line after a
    final newline (``line == len(lines)``) has length 0.

    Args:
        lines: the document's lines, each with its line break.
        num_units: client-unit length of a string (UTF-16 for most clients).
    """
    if position.line >= len(lines):
        return types.Position(line=position.line, character=0)
    text = lines[position.line].rstrip("\r\n")
    return types.Position(line=position.line, character=min(position.character, num_units(text)))


def lsp_inline_items(sug: Suggestion, position: types.Position) -> types.InlineCompletionList:
    item = types.InlineCompletionItem(
        insert_text=sug.text,
        range=types.Range(start=position, end=position),
        command=types.Command(title="Mochi: accepted", command=ACCEPT_COMMAND, arguments=[sug.id]),
    )
    return types.InlineCompletionList(items=[item])


def lsp_completion_items(sug: Suggestion, line_text: str, position: types.Position,
                         character_of: int) -> types.CompletionList:
    """A completion item that inserts the suggestion; its range covers the word being typed.

    Clients filter items by the text between the range start and the cursor (Neovim's omnifunc
    requires the new text to start with it), so the edit replaces that word with word+suggestion.

    Args:
        line_text: the cursor's line up to the cursor.
        character_of: client-unit length of a string (UTF-16 for most clients).
    """
    word = _WORD_TAIL.search(line_text)
    typed = word.group(0) if word else ""
    start = types.Position(line=position.line, character=position.character - character_of(typed))
    new_text = typed + sug.text
    first = sug.text.split("\n", 1)[0].strip() or sug.text.strip()
    label = (typed + first)[:80]
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="Mochi" + (" (cached)" if sug.cached else ""),
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=sug.text),
        filter_text=new_text,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=position), new_text=new_text),
        command=types.Command(title="Mochi: accepted", command=ACCEPT_COMMAND, arguments=[sug.id]),
        data={"mochi_id": sug.id},
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def lsp_client_wants_inline(caps: types.ClientCapabilities | None) -> bool:
    td = caps.text_document if caps is not None else None
    return td is not None and td.inline_completion is not None


def lsp_client_has_progress(caps: types.ClientCapabilities | None) -> bool:
    return bool(caps and caps.window and caps.window.work_done_progress)
