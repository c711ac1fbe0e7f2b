"""Unified diffs: write them (git-style, ``\\ No newline at end of file`` included) and apply them.

:func:`make_diff` formats hunks from :class:`difflib.SequenceMatcher` itself because
``difflib.unified_diff`` emits broken output for a last line without a newline.
:func:`apply_diff` is a small ``patch``: strict mode checks every context and removed line exactly
(used to verify a diff before a tool returns it); ``fuzzy`` mode tolerates what language models get
wrong when they write diffs themselves (hunk counts, trailing whitespace, blank context lines
without their leading space), so a model-written diff can be repaired into a clean one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from mochi_mcp.errors import DiffImpossible

NO_NEWLINE = "\\ No newline at end of file"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchDoesNotApply(DiffImpossible):
    """A hunk's context or removed lines do not match the text."""


def _range(start: int, stop: int) -> str:
    # Same convention as difflib/GNU diff: 1-based start, and an empty range names the line before.
    length = stop - start
    first = start + 1
    if length == 1:
        return f"{first}"
    if length == 0:
        first -= 1
    return f"{first},{length}"


def _emit(prefix: str, lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(prefix + line)
        else:
            out.append(prefix + line + "\n" + NO_NEWLINE + "\n")
    return out


def make_diff(old: str, new: str, path: str = "file", *, context: int = 3) -> str:
    """A unified diff turning ``old`` into ``new`` (``a/path`` → ``b/path``); ``""`` when equal."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    out: list[str] = []
    for group in SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out += _emit(" ", a[x1:x2])
                continue
            if tag in ("replace", "delete"):
                out += _emit("-", a[x1:x2])
            if tag in ("replace", "insert"):
                out += _emit("+", b[y1:y2])
    if not out:
        return ""
    return f"--- a/{path}\n+++ b/{path}\n" + "".join(out)


@dataclass
class Hunk:
    old_start: int
    old: list[str] = field(default_factory=list)  # context + removed lines, with their newlines
    new: list[str] = field(default_factory=list)  # context + added lines


def parse_diff(diff: str, *, fuzzy: bool = False) -> list[Hunk]:
    """Hunks of a single-file unified diff (file headers and ``diff --git`` lines are skipped)."""
    hunks: list[Hunk] = []
    cur: Hunk | None = None
    last: list[list[str]] = []  # the lists the previous line went to (for "\ No newline")
    for raw in diff.splitlines(keepends=True):
        line = raw.rstrip("\r\n") if fuzzy else raw.rstrip("\n")
        m = _HUNK.match(line)
        if m:
            cur = Hunk(old_start=int(m.group(1)))
            hunks.append(cur)
            last = []
            continue
        if cur is None or line.startswith(("--- ", "+++ ", "diff --git", "index ")):
            continue
        if line.startswith("\\"):
            for lst in last:  # the previous line had no newline at the end of its file
                lst[-1] = lst[-1].removesuffix("\n")
            continue
        if line == "" and fuzzy:
            line = " "
        tag, body = line[:1], line[1:] + "\n"
        if tag == " ":
            cur.old.append(body)
            cur.new.append(body)
            last = [cur.old, cur.new]
        elif tag == "-":
            cur.old.append(body)
            last = [cur.old]
        elif tag == "+":
            cur.new.append(body)
            last = [cur.new]
        elif not fuzzy:
            raise PatchDoesNotApply(f"malformed diff line {line!r}: each hunk line starts with ' ', '-' or '+'")
    if not hunks:
        raise PatchDoesNotApply("the diff has no hunks (no line starting with '@@ -')")
    return hunks


def _norm(line: str) -> str:
    return " ".join(line.split())


def _find(a: list[str], block: list[str], expected: int, lo: int, fuzzy: bool) -> int:
    """Index where ``block`` matches ``a`` nearest to ``expected`` (at or after ``lo``), or -1."""
    n = len(block)
    key = [_norm(x) for x in block] if fuzzy else block
    for delta in range(0, len(a) + 1):
        for pos in (expected - delta, expected + delta) if delta else (expected,):
            if pos < lo or pos + n > len(a):
                continue
            window = a[pos : pos + n]
            if (window if not fuzzy else [_norm(x) for x in window]) == key:
                return pos
    return -1


def apply_diff(text: str, diff: str, *, fuzzy: bool = False) -> str:
    """Apply a single-file unified diff to ``text``.

    Raises:
        PatchDoesNotApply: a hunk's old lines are not found (after its position in the file).
    """
    a = text.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    for n, h in enumerate(parse_diff(diff, fuzzy=fuzzy), 1):
        # hunk headers count in the original's numbering; an empty old side names the line before
        expected = h.old_start - 1 if h.old else h.old_start
        if not h.old:
            pos = min(max(expected, cursor), len(a))
        else:
            pos = _find(a, h.old, max(expected, cursor), cursor, fuzzy)
        if pos < 0:
            want = h.old[0].rstrip("\n") if h.old else ""
            raise PatchDoesNotApply(
                f"hunk {n} (at line {h.old_start}) does not apply: its lines, starting {want!r}, "
                "are not in the text"
            )
        out += a[cursor:pos]
        if fuzzy:
            # keep the file's own spelling of context lines the model mangled in whitespace
            new = _keep_original_context(a[pos : pos + len(h.old)], h)
        else:
            new = h.new
        out += new
        cursor = pos + len(h.old)
    out += a[cursor:]
    return "".join(out)


def _keep_original_context(original: list[str], h: Hunk) -> list[str]:
    """Replace hunk context lines by the file's exact lines (fuzzy matches differ in whitespace)."""
    exact = {_norm(x): x for x in original}
    old_norm = {_norm(x) for x in h.old}
    return [exact.get(_norm(x), x) if _norm(x) in old_norm else x for x in h.new]


def verify(old: str, diff: str, new: str) -> None:
    """Check that ``diff`` turns ``old`` into exactly ``new``.

    Raises:
        PatchDoesNotApply: it does not apply, or applies to something else.
    """
    got = apply_diff(old, diff)
    if got != new:
        raise PatchDoesNotApply("the diff applies but does not reproduce the intended text")
