"""Recently edited code, offered to the prompt as context ("recent" snippets).

The server notes the line of every edit; when completing in one document, the regions last
edited in *other* open documents go into the prompt (the current document is already in the
prefix/suffix windows).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from mochi_model.types import Snippet

WINDOW_LINES = 6  # lines kept either side of an edit


class RecentEdits:
    """Most recent edit position per document, newest first."""

    def __init__(self, *, documents: int = 8) -> None:
        self._edits: OrderedDict[str, tuple[str, int]] = OrderedDict()  # uri -> (path, line)
        self._documents = documents
        self._lock = threading.Lock()

    def note(self, uri: str, path: str, line: int) -> None:
        with self._lock:
            self._edits.pop(uri, None)
            self._edits[uri] = (path, line)
            while len(self._edits) > self._documents:
                self._edits.popitem(last=False)

    def last_line(self, uri: str) -> int | None:
        """The line of the document's last edit (None when it has none)."""
        with self._lock:
            edit = self._edits.get(uri)
        return edit[1] if edit is not None else None

    def forget(self, uri: str) -> None:
        with self._lock:
            self._edits.pop(uri, None)

    def snippets(self, exclude_uri: str, text_of: Callable[[str], str | None], limit: int = 3) -> list[Snippet]:
        """Snippets around the last edit of other documents; ``text_of(uri)`` gives their text."""
        with self._lock:
            items = list(reversed(self._edits.items()))
        out: list[Snippet] = []
        for uri, (path, line) in items:
            if uri == exclude_uri:
                continue
            text = text_of(uri)
            if not text:
                continue
            lines = text.splitlines(keepends=True)
            lo, hi = max(0, line - WINDOW_LINES), min(len(lines), line + WINDOW_LINES + 1)
            body = "".join(lines[lo:hi]).strip("\n")
            if body.strip():
                out.append(Snippet(path=path, text=body, kind="recent"))
            if len(out) >= limit:
                break
        return out
