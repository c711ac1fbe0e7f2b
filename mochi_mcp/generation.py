"""Calling the engine from a tool: time limits, cancellation, and a confidence score.

Every tool generates through :func:`generate` (completions: the pipeline + :func:`check_result`), so a timeout or a cancelled
request reads the same everywhere. Confidence is the geometric-mean token probability
``exp(mean_logprob)``, halved for every call to a project symbol the index does not know.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mochi_mcp.errors import GenerationTimeout, McpError_
from mochi_model.types import CancelToken, Completion, Engine

CONSERVATIVE_TEMPERATURE = 0.0
BALANCED_TEMPERATURE = 0.2
CREATIVE_TEMPERATURE = 0.8
DEFAULT_TIMEOUT_S = 120.0


class GenerationCancelled(McpError_):
    """The client cancelled the request while the model was generating."""


@dataclass(kw_only=True)
class Limits:
    """How long and how much one tool call may generate."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    cancel: CancelToken | None = None


def check_result(result: Completion, limits: Limits, what: str) -> Completion:
    """Raise the tool error for a timed-out, cancelled or failed generation; else return it."""
    if result.finish_reason == "time":
        raise GenerationTimeout(
            f"{what} timed out after {limits.timeout_s:g}s with {result.completion_tokens} tokens generated; "
            "ask for less (max_tokens, a smaller file or region) or restart `mochi serve` with a larger --timeout"
        )
    if result.finish_reason == "cancelled":
        raise GenerationCancelled(f"{what} was cancelled by the client")
    if result.finish_reason == "error":
        raise McpError_(f"{what} failed inside the model: {result.extra.get('error', 'unknown error')}")
    return result


def generate(engine: Engine, prompt: str, *, max_tokens: int, temperature: float, limits: Limits,
             what: str = "generation", stop: Sequence[str] = ()) -> Completion:
    """Instruction-style generation with the tool's limits; raises on timeout or cancellation."""
    result = engine.generate(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop,
                             cancel=limits.cancel, time_budget_s=limits.timeout_s, chat=True)
    return check_result(result, limits, what)


def confidence(mean_logprob: float | None, unknown_symbols: int) -> float:
    """Confidence in ``[0, 1]``: token probability (0.5 when unknown) halved per unknown symbol."""
    p = 0.5 if mean_logprob is None else math.exp(min(0.0, mean_logprob))
    return round(p * (0.5**unknown_symbols), 3)
