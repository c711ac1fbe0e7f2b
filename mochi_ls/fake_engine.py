"""A fake engine for running the real server subprocess in tests and benchmarks (no model).

``mochi lsp --fake-engine SPEC`` (hidden flag) or ``MOCHI_LSP_FAKE_ENGINE=SPEC`` selects it. SPEC
is JSON (or a plain string, taken as the answer)::

    {"answer": "return a + b", "delay": 0.01, "echo_context": false, "fail_load": ""}

``delay``: seconds per ~4-character token, so cancellation is observable. ``echo_context``:
answer with the prompt's context snippets (``path: first line`` each), so a test can see what the
prompt builder retrieved. ``fail_load``: the engine factory raises this message (model-load
failure path). ``load_delay``: seconds the factory takes. ``oracle``: a file path; the answer is
the rest of the line that follows the prefix in that file (a perfect predictor, for replaying a
typing trace of that file in ``bench/lsp_bench.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mochi_core.errors import ConfigError
from mochi_model.fake import FakeEngine
from mochi_model.types import Completion, Snippet

ENV_VAR = "MOCHI_LSP_FAKE_ENGINE"


class ContextEchoEngine(FakeEngine):
    """Answers with a summary of the context snippets it was given."""

    def complete_fim(self, prefix: str, suffix: str = "", context_snippets: Sequence[Snippet] = (),
                     **kw: Any) -> Completion:
        lines = [f"{s.kind}:{s.path}: {s.text.strip().splitlines()[0] if s.text.strip() else ''}"
                 for s in context_snippets]
        self.answer = "# context: " + (" | ".join(lines) if lines else "none")
        return super().complete_fim(prefix, suffix, context_snippets, **kw)


def parse_spec(spec: str) -> dict[str, Any]:
    spec = spec.strip()
    if spec.startswith("{"):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--fake-engine: invalid JSON ({exc}); example: '{{\"answer\": \"x\"}}'") from exc
        if not isinstance(data, dict):
            raise ConfigError("--fake-engine: expected a JSON object")
        return data
    return {"answer": spec or "return a + b"}


def _oracle(source: str) -> Callable[[str, str], str]:
    def answer(prefix: str, suffix: str) -> str:
        tail = prefix[-200:]
        at = source.find(tail) if tail else -1
        if at < 0:
            return ""
        rest = source[at + len(tail) :]
        return rest.split("\n", 1)[0] if rest and not rest.startswith("\n") else rest[:1]

    return answer


def fake_engine_factory(spec: str) -> Callable[[], FakeEngine]:
    """A factory (as the server's engine builder expects) for the fake described by ``spec``."""
    data = parse_spec(spec)

    def build() -> FakeEngine:
        if data.get("load_delay"):
            time.sleep(float(data["load_delay"]))
        if data.get("fail_load"):
            raise RuntimeError(str(data["fail_load"]))
        cls = ContextEchoEngine if data.get("echo_context") else FakeEngine
        answer: Any = str(data.get("answer", "return a + b"))
        if data.get("oracle"):
            answer = _oracle(Path(str(data["oracle"])).read_text(encoding="utf-8"))
        return cls(answer, token_delay_s=float(data.get("delay", 0.0)))

    return build
