"""Completion cache with type-ahead.

When the user types the first characters of the suggestion on screen, the rest is served from
here without a new generation (what Copilot, Tabby and llama.vim do). An entry remembers where the
suggestion was made: the text before the cursor (its tail and full length, so a check costs
O(tail)) and the head of the text after it. A lookup matches when the new prefix is the old one
plus some typed characters that the suggestion starts with, and the text after the cursor is
unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

PREFIX_TAIL = 2048  # characters of the prefix compared on lookup
SUFFIX_HEAD = 256


@dataclass(frozen=True)
class CacheEntry:
    id: str
    uri: str
    prefix_len: int
    prefix_tail: str
    suffix_head: str
    text: str


@dataclass(frozen=True)
class CacheHit:
    entry: CacheEntry
    typed: str  # characters typed since the suggestion was made
    remaining: str  # what is left to show


class SuggestionCache:
    """LRU of recent suggestions per document (thread-safe).

    Args:
        per_document: entries kept per document.
        documents: documents kept.
    """

    def __init__(self, *, per_document: int = 8, documents: int = 32) -> None:
        self._per_document = per_document
        self._documents = documents
        self._data: OrderedDict[str, list[CacheEntry]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def put(self, *, id: str, uri: str, prefix: str, suffix: str, text: str) -> CacheEntry | None:
        if not text:
            return None
        entry = CacheEntry(id=id, uri=uri, prefix_len=len(prefix), prefix_tail=prefix[-PREFIX_TAIL:],
                           suffix_head=suffix[:SUFFIX_HEAD], text=text)
        with self._lock:
            entries = self._data.pop(uri, [])
            entries = [e for e in entries if not (e.prefix_len == entry.prefix_len and e.prefix_tail == entry.prefix_tail)]
            entries.insert(0, entry)
            self._data[uri] = entries[: self._per_document]
            while len(self._data) > self._documents:
                self._data.popitem(last=False)
        return entry

    def lookup(self, *, uri: str, prefix: str, suffix: str) -> CacheHit | None:
        """Return the rest of a cached suggestion the user is typing through, if any."""
        with self._lock:
            entries = list(self._data.get(uri, ()))
        head = suffix[:SUFFIX_HEAD]
        for e in entries:
            hit = _match(e, prefix, head)
            if hit is not None:
                self.hits += 1
                return hit
        self.misses += 1
        return None

    def invalidate(self, uri: str) -> None:
        with self._lock:
            self._data.pop(uri, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _match(e: CacheEntry, prefix: str, suffix_head: str) -> CacheHit | None:
    if len(prefix) < e.prefix_len or len(prefix) - e.prefix_len >= len(e.text):
        return None
    start = e.prefix_len - len(e.prefix_tail)
    if prefix[start : e.prefix_len] != e.prefix_tail:
        return None
    typed = prefix[e.prefix_len :]
    if not e.text.startswith(typed):
        return None
    # The text after the cursor must not have changed, except where an editor auto-inserted a
    # closing character that the suggestion also contains (compare ignoring leading whitespace).
    if suffix_head != e.suffix_head and suffix_head.lstrip() != e.suffix_head.lstrip():
        return None
    return CacheHit(entry=e, typed=typed, remaining=e.text[len(typed) :])
