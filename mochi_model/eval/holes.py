"""Holes to fill in held-out files: next-line and FIM-span, seeded and spread over all files.

A next-line hole puts the cursor after the line's indentation and asks for the rest of the line
(what an editor's inline completion does at the start of a line). A span hole removes 2–6 whole
lines from their indentation on. Files are visited round-robin so every test file contributes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mochi_model.data.samples import is_completable_line, next_line_hole

HOLE_KINDS = ("next_line", "span")  # `mochi eval` adds "cross_file" (next-line holes, chosen by category)


@dataclass(frozen=True, kw_only=True)
class Hole:
    kind: str
    path: str
    cursor: int  # hole start offset in the original text
    end: int  # hole end offset
    target: str

    def document(self, text: str) -> str:
        """The file with the hole cut out (cursor at ``self.cursor``)."""
        return text[:self.cursor] + text[self.end:]


def sample_holes(files: dict[str, str], n: int, *, kind: str = "next_line", seed: int = 0,
                 max_span_lines: int = 6) -> list[Hole]:
    """Up to ``n`` holes of ``kind`` over ``files`` (deterministic for a seed).

    Raises:
        ValueError: unknown kind.
    """
    if kind not in HOLE_KINDS:
        raise ValueError(f"hole kind must be one of {HOLE_KINDS}, got {kind!r}")
    rng = random.Random(f"{seed}:{kind}")
    pools: dict[str, list[int]] = {}
    for path in sorted(files):
        lines = files[path].split("\n")
        cand = [i for i, ln in enumerate(lines) if is_completable_line(ln)]
        rng.shuffle(cand)
        if cand:
            pools[path] = cand
    holes: list[Hole] = []
    while len(holes) < n and any(pools.values()):
        for path in sorted(pools):
            if not pools[path] or len(holes) >= n:
                continue
            i = pools[path].pop()
            text = files[path]
            cursor, end = next_line_hole(text, i)
            if kind == "span":
                j = min(len(text.split("\n")) - 1, i + rng.randint(2, max_span_lines) - 1)
                _, end = next_line_hole(text, j)
            holes.append(Hole(kind=kind, path=path, cursor=cursor, end=end, target=text[cursor:end]))
    return holes
