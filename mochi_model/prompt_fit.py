"""Shrink a completion prompt until its uncached part can be prefilled within the time budget.

On a slow or busy CPU a full prompt (~1,900 tokens at the default budgets) can take longer to
prefill than the whole time budget: measured on a 2-core AVX2 EPYC (81 GFLOP/s fp32), llama.cpp
prefilled the 0.5B model at ~90 tokens/s, so a jump to a new place took ~20 s and every pause of
the LSP trace came back empty. A smaller prompt gives a worse suggestion than the full one, but a
better one than nothing.

:func:`levels` lists ever smaller versions of the pieces (suffix first, because in the PSM layout
it comes *after* the prefix and is re-prefilled on every keystroke; then the retrieved snippets;
then the in-file prefix from its far end). The engine, once the request's turn has come, takes the
first level whose *uncached* tokens fit into :data:`PREFILL_SHARE` of the budget at the measured
prefill speed (the KV cache decides what is uncached, so while the user types on at one place the
level that was chosen stays cheap and is chosen again). Without a time budget (eval, MCP without
a deadline) or before any speed was measured, the full prompt is used. Cuts are by whole lines,
counted from the cursor, so a level's prompt front stays the same while the cursor line grows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mochi_model.types import Snippet

#: Share of the time budget that the prefill of new prompt tokens may take (the rest decodes).
PREFILL_SHARE = 0.5
#: Decoding steps reserved out of that share before prefill is sized (a suggestion needs a few).
DECODE_RESERVE = 8


@dataclass(frozen=True)
class Level:
    """How much of each piece a level keeps (fractions of the lines given)."""

    snippets: bool
    prefix: float
    suffix: float


#: Level 0 is the full prompt; these follow, ever smaller.
LEVELS: tuple[Level, ...] = (
    Level(snippets=True, prefix=1.0, suffix=0.5),
    Level(snippets=True, prefix=1.0, suffix=0.25),
    Level(snippets=False, prefix=1.0, suffix=0.25),
    Level(snippets=False, prefix=0.5, suffix=0.25),
    Level(snippets=False, prefix=0.25, suffix=0.125),
    Level(snippets=False, prefix=0.125, suffix=0.0),
    Level(snippets=False, prefix=0.0625, suffix=0.0),
    Level(snippets=False, prefix=0.03125, suffix=0.0),
)


def keep_last_lines(text: str, frac: float) -> str:
    """The last ``frac`` of ``text``'s lines (at least the cursor line)."""
    if frac >= 1.0:
        return text
    lines = text.split("\n")
    keep = max(1, math.ceil(len(lines) * frac))
    return "\n".join(lines[-keep:])


def keep_first_lines(text: str, frac: float) -> str:
    """The first ``frac`` of ``text``'s lines (the rest of the cursor line always stays)."""
    if frac >= 1.0:
        return text
    lines = text.split("\n")
    keep = max(1, math.floor(len(lines) * frac))
    return "\n".join(lines[:keep])


def levels(prefix: str, suffix: str, snippets: Sequence[Snippet]) -> Iterator[tuple[int, str, str, Sequence[Snippet]]]:
    """``(level, prefix, suffix, snippets)`` for each of :data:`LEVELS`, skipping repeats."""
    seen = {(prefix, suffix, len(snippets))}
    for i, lv in enumerate(LEVELS, 1):
        p, s = keep_last_lines(prefix, lv.prefix), keep_first_lines(suffix, lv.suffix)
        sn: Sequence[Snippet] = snippets if lv.snippets else ()
        key = (p, s, len(sn))
        if key in seen:
            continue
        seen.add(key)
        yield i, p, s, sn


#: The decode reserve never takes more than this share of the budget: on a CPU so slow that eight
#: steps fill half the budget, a short prompt is still better than the smallest level.
MAX_RESERVE_SHARE = 0.25
#: Prompts with at most this many uncached tokens always fit (nothing smaller is worth building).
ALWAYS_FITS = 32


def allowed_prefill_s(budget_s: float, step_s: float | None) -> float:
    """Seconds of prefill a request with ``budget_s`` may spend (the rest is for decoding)."""
    reserve = min(DECODE_RESERVE * (step_s or 0.0), budget_s * MAX_RESERVE_SHARE)
    return max(0.0, budget_s * PREFILL_SHARE - reserve)
