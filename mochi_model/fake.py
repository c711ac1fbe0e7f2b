"""A deterministic engine for protocol tests (no model, no torch).

It streams a canned answer token by token, honouring cancellation, stop sequences, token and
time budgets exactly like the real engine, and records every call so tests can assert on the
prompt pieces the edges sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mochi_model.types import CancelToken, Completion, OnToken, Snippet


@dataclass
class FakeCall:
    kind: str  # "fim" | "generate"
    prefix: str = ""
    suffix: str = ""
    prompt: str = ""
    snippets: list[Snippet] = field(default_factory=list)
    max_tokens: int = 0
    temperature: float = 0.0
    multiline: bool | None = None
    stop: list[str] = field(default_factory=list)
    finish_reason: str = ""
    time_budget_s: float | None = None


class FakeEngine:
    """Engine double.

    Args:
        answer: text to produce, or a function ``(prefix_or_prompt, suffix) -> text``.
        token_delay_s: sleep between tokens, to make cancellation observable.
        fail: exception to raise from every call (model-failure paths).
    """

    model_id = "fake/fake-coder"

    def __init__(
        self,
        answer: str | Callable[[str, str], str] = "return a + b",
        *,
        token_delay_s: float = 0.0,
        fail: Exception | None = None,
    ) -> None:
        self.answer = answer
        self.token_delay_s = token_delay_s
        self.fail = fail
        self.calls: list[FakeCall] = []
        self.started = threading.Event()  # set when a generation begins (for cancellation tests)
        self._lock = threading.Lock()

    def _text_for(self, a: str, b: str) -> str:
        return self.answer(a, b) if callable(self.answer) else self.answer

    def _stream(self, text: str, call: FakeCall, *, max_tokens: int, stop: Sequence[str],
                cancel: CancelToken | None, time_budget_s: float | None, on_token: OnToken | None) -> Completion:
        if self.fail is not None:
            raise self.fail
        self.started.set()
        t0 = time.perf_counter()
        out = ""
        reason = "eos"
        # "tokens" are whitespace-preserving pieces of ~4 characters, like a real BPE.
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
        n = 0
        for piece in pieces:
            if cancel is not None and cancel.cancelled:
                reason = "cancelled"
                break
            if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                reason = "time"
                break
            if n >= max_tokens:
                reason = "length"
                break
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            out += piece
            n += 1
            if on_token is not None:
                on_token(piece)
            hit = min((out.find(s) for s in stop if s and s in out), default=-1)
            if hit >= 0:
                out = out[:hit]
                reason = "stop"
                break
        call.finish_reason = reason
        ms = (time.perf_counter() - t0) * 1000
        return Completion(text=out, finish_reason=reason, prompt_tokens=len(call.prefix + call.prompt) // 4,
                          completion_tokens=n, mean_logprob=-0.1, decode_ms=ms, total_ms=ms)

    def complete_fim(self, prefix: str, suffix: str = "", context_snippets: Sequence[Snippet] = (), *,
                     max_tokens: int = 64, stop: Sequence[str] = (), temperature: float = 0.0,
                     multiline: bool | None = None, cancel: CancelToken | None = None,
                     time_budget_s: float | None = None, path: str = "", language: str = "",
                     on_token: OnToken | None = None) -> Completion:
        call = FakeCall("fim", prefix=prefix, suffix=suffix, snippets=list(context_snippets),
                        max_tokens=max_tokens, temperature=temperature, multiline=multiline, stop=list(stop),
                        time_budget_s=time_budget_s)
        with self._lock:
            self.calls.append(call)
        text = self._text_for(prefix, suffix)
        if multiline is False:
            text = text.split("\n", 1)[0]
        return self._stream(text, call, max_tokens=max_tokens, stop=stop, cancel=cancel,
                            time_budget_s=time_budget_s, on_token=on_token)

    def generate(self, prompt: str, *, max_tokens: int = 256, stop: Sequence[str] = (), temperature: float = 0.0,
                 cancel: CancelToken | None = None, time_budget_s: float | None = None, chat: bool = True,
                 on_token: OnToken | None = None) -> Completion:
        call = FakeCall("generate", prompt=prompt, max_tokens=max_tokens, temperature=temperature)
        with self._lock:
            self.calls.append(call)
        return self._stream(self._text_for(prompt, ""), call, max_tokens=max_tokens, stop=stop, cancel=cancel,
                            time_budget_s=time_budget_s, on_token=on_token)

    def complete(self, instruction: str, input_code: str = "", **kw: object) -> Completion:
        prompt = instruction + ("\n\n" + input_code if input_code else "")
        return self.generate(prompt)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4) if text else 0
