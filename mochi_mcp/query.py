"""``domain_query``: project-grounded code generation with conservative / creative / auto modes.

The prompt carries definitions and similar code retrieved from the index, the surroundings of the
file being edited, and the user's context. Every answer is checked against the index: calls to
project symbols that do not exist are listed in ``unknown_symbols``. In ``auto`` mode a first,
lightly sampled answer (temperature 0.2) with low confidence (or any unknown symbol) is retried
conservatively: greedy, with the prompt naming the symbols that do exist and the ones that do not;
the better answer wins. ``mode_used`` is always one of the three modes: ``auto`` when the first
answer of auto mode was kept, ``conservative`` when its greedy retry was.

Confidence, in ``[0, 1]``::

    confidence = exp(mean token log-prob)          # 0.5 when the backend reports none
                 * 0.5 ** unknown_symbols          # halved per call to a symbol the index lacks
                 * 0.3 if the answer was cut off   # finish_reason length: hit max_tokens

A cut-off answer is incomplete code however likely its tokens were, so it never reports more than
0.3. Auto mode does not retry an answer only because it was cut off (the retry has the same token
budget); among attempts the one with the fewest unknown symbols, then the highest confidence, wins.

``sources`` are the ``path:start-end`` labels of the pieces placed in the prompt, spanning the lines
each piece shows (a definition's signature and docstring, a similar chunk whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mochi_mcp import symbols
from mochi_mcp.errors import BadToolInput
from mochi_mcp.generation import (
    BALANCED_TEMPERATURE,
    CONSERVATIVE_TEMPERATURE,
    CREATIVE_TEMPERATURE,
    Limits,
    confidence,
    generate,
)
from mochi_mcp.prompts import domain_query_prompt, extract_code
from mochi_mcp.workspace import Workspace, language_for
from mochi_model import retrieval
from mochi_model.types import Engine

MODES = ("auto", "conservative", "creative")
AUTO_MIN_CONFIDENCE = 0.55
CUT_OFF_FACTOR = 0.3  # confidence multiplier for an answer that hit max_tokens
CUT_OFF_REASONS = frozenset({"length", "max_tokens"})
DEFAULT_MAX_TOKENS = 384
CONTEXT_TOKENS = 1200
FILE_TOKENS = 1000


@dataclass(kw_only=True)
class Attempt:
    mode: str  # one of MODES
    temperature: float
    code: str
    mean_logprob: float | None
    unknown: list[str]
    confidence: float
    finish_reason: str
    tokens: int

    @property
    def cut_off(self) -> bool:
        return self.finish_reason in CUT_OFF_REASONS


def answer_confidence(mean_logprob: float | None, unknown_symbols: int, finish_reason: str) -> float:
    """Confidence of one answer (see the module docstring)."""
    c = confidence(mean_logprob, unknown_symbols)
    if finish_reason in CUT_OFF_REASONS:
        c = round(c * CUT_OFF_FACTOR, 3)
    return c


def domain_query(ws: Workspace, engine: Engine, *, instruction: str, context: str = "",
                 file_path: str | None = None, mode: str = "auto", max_tokens: int | None = None,
                 limits: Limits | None = None) -> dict[str, Any]:
    """Generate project-specific code for ``instruction``.

    Returns:
        ``code``, ``mode`` (requested), ``mode_used`` (one of :data:`MODES`), ``confidence``,
        ``unknown_symbols``, ``retried``, ``truncated`` (the answer hit max_tokens), ``finish_reason``,
        ``sources`` (``path:start-end`` of the code placed in the prompt) and ``attempts``.

    Raises:
        BadToolInput, PathOutsideProject, FileUnreadable, IndexNotReady, GenerationTimeout.
    """
    instruction = (instruction or "").strip()
    if not instruction:
        raise BadToolInput("instruction is empty: say what code to write, e.g. 'a function that loads the config'")
    if mode not in MODES:
        raise BadToolInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    limits = limits or Limits()
    max_tokens = max_tokens or DEFAULT_MAX_TOKENS
    index = ws.index(required=True)
    rel, file_text = ("", "")
    if file_path:
        rel, file_text = ws.read_text(file_path)
    count = engine.count_tokens
    pieces = retrieval.gather(index, f"{instruction}\n{context}", language=language_for(rel),
                              exclude_path=rel or None, budget_tokens=CONTEXT_TOKENS, count_tokens=count)
    language = language_for(rel) or _majority_language(pieces)
    context_code = retrieval.render(pieces, retrieval.comment_prefix(language))
    surroundings = retrieval.file_surroundings(file_text, budget_tokens=FILE_TOKENS, count=count) if file_text else ""
    known_text = "\n".join([context_code, surroundings, context])
    modules = ws.project_modules()

    def attempt(kind: str, temperature: float, allowed: list[str] | None = None,
                forbidden: list[str] | None = None) -> Attempt:
        prompt = domain_query_prompt(project=ws.project_name, instruction=instruction, language=language,
                                     context_code=context_code, user_context=context, file_path=rel,
                                     file_text=surroundings, allowed=allowed, forbidden=forbidden)
        out = generate(engine, prompt, max_tokens=max_tokens, temperature=temperature, limits=limits,
                       what="domain_query")
        code = extract_code(out.text)
        unknown = symbols.unknown_calls(code, language=language, index=index, known_text=known_text,
                                        project_modules=modules)
        return Attempt(mode=kind, temperature=temperature, code=code, mean_logprob=out.mean_logprob,
                       unknown=unknown,
                       confidence=answer_confidence(out.mean_logprob, len(unknown), out.finish_reason),
                       finish_reason=out.finish_reason, tokens=out.completion_tokens)

    attempts: list[Attempt] = []
    if mode == "conservative":
        attempts.append(attempt("conservative", CONSERVATIVE_TEMPERATURE))
    elif mode == "creative":
        attempts.append(attempt("creative", CREATIVE_TEMPERATURE))
    else:
        first = attempt("auto", BALANCED_TEMPERATURE)
        attempts.append(first)
        # A cut-off answer is not retried for that alone: the retry has the same token budget.
        if first.unknown or confidence(first.mean_logprob, 0) < AUTO_MIN_CONFIDENCE:
            allowed = sorted({p.name for p in pieces if p.name})
            attempts.append(attempt("conservative", CONSERVATIVE_TEMPERATURE, allowed, first.unknown))
    # fewest unknown symbols, then highest confidence; ties go to the later (conservative) answer
    best = min(reversed(attempts), key=lambda a: (len(a.unknown), -a.confidence))
    return {
        "code": best.code,
        "language": language,
        "mode": mode,
        "mode_used": best.mode,
        "confidence": best.confidence,
        "mean_logprob": best.mean_logprob,
        "unknown_symbols": best.unknown,
        "retried": len(attempts) > 1,
        "truncated": best.cut_off,
        "finish_reason": best.finish_reason,
        "max_tokens": max_tokens,
        "sources": [p.location for p in pieces],
        "attempts": [
            {"mode": a.mode, "temperature": a.temperature, "confidence": a.confidence,
             "unknown_symbols": a.unknown, "tokens": a.tokens, "finish_reason": a.finish_reason}
            for a in attempts
        ],
    }


def _majority_language(pieces: list[retrieval.Piece]) -> str:
    counts: dict[str, int] = {}
    for p in pieces:
        lang = language_for(p.path)
        if lang:
            counts[lang] = counts.get(lang, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""


def render_text(result: dict[str, Any]) -> str:
    """What an AI client reads: the code, then one line on how sure Mochi is and why."""
    lang = result.get("language", "")
    lines = [f"```{lang}\n{result['code'].rstrip()}\n```",
             f"mode: {result['mode_used']} (requested {result['mode']}"
             + (", retried conservatively" if result["retried"] else "") + f"); confidence {result['confidence']:.2f}"]
    if result["unknown_symbols"]:
        lines.append("warning: calls to symbols not found in the project index: " + ", ".join(result["unknown_symbols"]))
    if result.get("truncated"):
        lines.append(f"warning: the answer hit max_tokens ({result.get('max_tokens', '?')}) and is probably cut off; "
                     "confidence was lowered for it — ask again with a larger max_tokens")
    if result["sources"]:
        lines.append("grounded on: " + ", ".join(result["sources"]))
    return "\n".join(lines)
