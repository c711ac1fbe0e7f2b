"""The engine contract shared by every edge (LSP, MCP, CLI, eval).

Edges take an object satisfying :class:`Engine` as a constructor argument; protocol tests pass
:class:`mochi_model.fake.FakeEngine`, real runs pass :class:`mochi_model.engine.InferenceEngine`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class CancelToken:
    """Set by the caller, checked by the decoder between tokens (thread-safe)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking at once when cancelled; True when cancelled."""
        return self._event.wait(timeout_s)


@dataclass(frozen=True, kw_only=True)
class Snippet:
    """A piece of retrieved project context placed in the prompt before the FIM hole."""

    path: str  # project-relative path shown to the model
    text: str
    kind: str = "similar"  # definition | similar | recent | pattern
    score: float = 0.0


FinishReason = str  # "eos" | "stop" | "length" | "time" | "cancelled" | "error"


@dataclass(kw_only=True)
class Completion:
    """What a generation returns. ``response`` is kept for the original API."""

    text: str
    finish_reason: FinishReason = "eos"
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the KV cache (not prefilled)
    completion_tokens: int = 0
    mean_logprob: float | None = None  # mean log-probability of the generated tokens
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def response(self) -> str:
        return self.text


OnToken = Callable[[str], None]


@runtime_checkable
class Engine(Protocol):
    """What the servers and eval need from a model engine."""

    model_id: str

    def complete_fim(
        self,
        prefix: str,
        suffix: str = "",
        context_snippets: Sequence[Snippet] = (),
        *,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        multiline: bool | None = None,
        cancel: CancelToken | None = None,
        time_budget_s: float | None = None,
        path: str = "",
        language: str = "",
        on_token: OnToken | None = None,
    ) -> Completion:
        """Fill the hole between ``prefix`` and ``suffix``; post-processed, ready to show."""
        ...

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        cancel: CancelToken | None = None,
        time_budget_s: float | None = None,
        chat: bool = True,
        on_token: OnToken | None = None,
    ) -> Completion:
        """Instruction-style generation (``chat=True`` applies the model's chat template)."""
        ...

    def count_tokens(self, text: str) -> int: ...
