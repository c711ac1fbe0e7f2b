"""One completion without a protocol: prompt pieces, cache, usage log, cancellation, failures."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from mochi_core.config import MochiConfig
from mochi_index.usage import UsageLog
from mochi_ls.cache import SuggestionCache
from mochi_ls.completer import Completer, CompletionInput
from mochi_ls.index_host import IndexHost
from mochi_ls.recent import RecentEdits
from mochi_model.fake import FakeEngine
from mochi_model.holder import EngineHolder
from mochi_model.pipeline import document_problem
from mochi_model.types import CancelToken

TEXT = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
OFFSET = TEXT.index("\n    \n") + 5


def _completer(tmp_path: Path, engine: FakeEngine, config: MochiConfig | None = None,
               others: dict[str, str] | None = None) -> Completer:
    cfg = config or MochiConfig()
    docs = others or {}
    return Completer(engine=EngineHolder(engine=engine), index=IndexHost(None, cfg), usage=UsageLog(tmp_path),
                     cache=SuggestionCache(), recent=RecentEdits(), config=lambda: cfg, text_of=docs.get)


def _inp(text: str = TEXT, offset: int = OFFSET) -> CompletionInput:
    return CompletionInput(uri="file:///p/a.py", path="a.py", language="python", text=text, offset=offset)


def _events(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / ".mochi" / "usage" / "events.jsonl").read_text().splitlines()]


def test_generate_sends_prefix_suffix_and_recent_edits_of_other_documents(tmp_path):
    engine = FakeEngine("return a + b")
    other = "import os\n\ndef helper():\n    return os.getcwd()\n"
    comp = _completer(tmp_path, engine, others={"file:///p/b.py": other})
    comp.recent.note("file:///p/b.py", "b.py", 3)
    comp.recent.note("file:///p/a.py", "a.py", 1)  # the current document is not repeated as context
    sug = comp.generate(_inp(), CancelToken())
    assert sug is not None and sug.text == "return a + b" and not sug.cached
    call = engine.calls[0]
    assert call.prefix == TEXT[:OFFSET] and call.suffix == TEXT[OFFSET:]
    assert [(s.kind, s.path) for s in call.snippets] == [("recent", "b.py")]
    assert "return os.getcwd()" in call.snippets[0].text
    assert call.max_tokens == 64
    ev = _events(tmp_path)[0]
    assert ev["event"] == "shown" and ev["id"] == sug.id and ev["model"] == "fake/fake-coder"


def test_config_controls_tokens_and_single_line(tmp_path):
    cfg = MochiConfig()
    cfg.completion.max_tokens = 3
    cfg.completion.multiline = "never"
    engine = FakeEngine("x = 1\ny = 2\n")
    sug = _completer(tmp_path, engine, cfg).generate(_inp(), CancelToken())
    assert sug.text == "x = 1" and engine.calls[0].max_tokens == 3


def test_lookup_serves_type_ahead_and_marks_a_typed_over_suggestion_rejected(tmp_path):
    comp = _completer(tmp_path, FakeEngine("return a + b"))
    first = comp.generate(_inp(), CancelToken())
    typed = TEXT[:OFFSET] + "ret" + TEXT[OFFSET:]
    hit = comp.lookup(_inp(typed, OFFSET + 3))
    assert hit.cached and hit.text == "urn a + b" and hit.id == first.id
    other = TEXT[:OFFSET] + "pass" + TEXT[OFFSET:]
    assert comp.lookup(_inp(other, OFFSET + 4)) is None
    assert [e["event"] for e in _events(tmp_path)] == ["shown", "rejected"]
    assert comp.stats.cache_hits == 1


def test_accept_records_the_suggestion_once(tmp_path):
    comp = _completer(tmp_path, FakeEngine("return a + b"))
    sug = comp.generate(_inp(), CancelToken())
    assert comp.accept(sug.id) is True
    assert comp.accept(sug.id) is False
    assert comp.accept("unknown") is False
    assert [e["event"] for e in _events(tmp_path)] == ["shown", "accepted"]


def test_a_cancelled_generation_returns_nothing_and_counts_its_cpu_time(tmp_path):
    engine = FakeEngine("a" * 400, token_delay_s=0.005)
    comp = _completer(tmp_path, engine)
    token = CancelToken()
    # Cancel from another thread once decoding has started, as the server's event loop does.
    threading.Thread(target=lambda: (engine.started.wait(5), token.cancel())).start()
    assert comp.generate(_inp(), token) is None
    assert engine.calls[0].finish_reason == "cancelled"
    assert comp.stats.cancelled == 1 and comp.stats.generated == 0
    assert not (tmp_path / ".mochi" / "usage" / "events.jsonl").exists()


def test_empty_answers_and_missing_engines_give_no_suggestion(tmp_path):
    assert _completer(tmp_path, FakeEngine("   ")).generate(_inp(), CancelToken()) is None
    cfg = MochiConfig()
    comp = Completer(engine=EngineHolder(), index=IndexHost(None, cfg), usage=UsageLog(tmp_path),
                     cache=SuggestionCache(), recent=RecentEdits(), config=lambda: cfg)
    assert comp.generate(_inp(), CancelToken()) is None


def test_huge_and_binary_documents_are_refused_with_a_reason():
    assert document_problem("x = 1\n") == ""
    assert "binary" in document_problem("ab\x00cd")
    assert "too large" in document_problem("x" * 2_000_001)


def test_a_request_made_while_the_model_loads_is_answered_once_it_is_ready(tmp_path):
    gate = threading.Event()
    holder = EngineHolder(factory=lambda progress: (gate.wait(10), FakeEngine("x = 1"))[1])
    cfg = MochiConfig()
    comp = Completer(engine=holder, index=IndexHost(None, cfg), usage=UsageLog(tmp_path), cache=SuggestionCache(),
                     recent=RecentEdits(), config=lambda: cfg)
    holder.start()
    out: list = []
    worker = threading.Thread(target=lambda: out.append(comp.generate(_inp(), CancelToken())))
    worker.start()
    worker.join(0.3)
    assert worker.is_alive() and holder.state == "loading"  # still waiting, not answered with nothing
    gate.set()
    worker.join(10)
    assert out and out[0] is not None and out[0].text == "x = 1"


def test_a_request_waiting_for_the_model_gives_up_when_superseded(tmp_path):
    gate = threading.Event()
    holder = EngineHolder(factory=lambda progress: (gate.wait(10), FakeEngine())[1])
    cfg = MochiConfig()
    comp = Completer(engine=holder, index=IndexHost(None, cfg), usage=UsageLog(tmp_path), cache=SuggestionCache(),
                     recent=RecentEdits(), config=lambda: cfg)
    holder.start()
    token = CancelToken()
    out: list = []
    worker = threading.Thread(target=lambda: out.append(comp.generate(_inp(), token)))
    worker.start()
    token.cancel()
    worker.join(5)
    gate.set()
    assert not worker.is_alive() and out == [None]


def test_warm_up_prefills_the_prompt_the_next_request_at_that_place_sends(tmp_path):
    from types import SimpleNamespace

    class WarmingFake(FakeEngine):
        warmed: list = []
        budgets: list = []

        def warm(self, prefix, suffix="", context_snippets=(), *, path="", language="", cancel=None,  # noqa: ANN001
                 time_budget_s=None):  # noqa: ANN001
            self.warmed.append((prefix, suffix, list(context_snippets), path, language))
            self.budgets.append(time_budget_s)
            return SimpleNamespace(state="done")

    engine = WarmingFake("x = 1")
    other = "file:///p/b.py"
    comp = _completer(tmp_path, engine, others={other: "def helper():\n    return 42\n"})
    comp.recent.note(other, "b.py", 0)
    assert comp.warm(_inp(), CancelToken()) == "done"
    comp.generate(_inp(), CancelToken())
    call = engine.calls[-1]
    assert engine.warmed == [(call.prefix, call.suffix, call.snippets, "a.py", "python")]
    assert any(s.path == "b.py" for s in call.snippets)  # recent edits are part of what is warmed
    assert engine.budgets == [call.time_budget_s] or engine.budgets == [2.0]  # fitted as a request would be
    token = CancelToken()
    token.cancel()
    assert comp.warm(_inp(), token) == "preempted" and len(engine.warmed) == 1
    assert _completer(tmp_path, FakeEngine()).warm(_inp(), CancelToken()) == "unsupported"


def test_after_a_shrunk_prompt_the_completer_grows_that_request_once(tmp_path):
    from types import SimpleNamespace

    class ShrinkingFake(FakeEngine):
        """Reports that its prompt was shrunk to level 5, and records what it is asked to grow."""

        grown: list = []

        def complete_fim(self, *a, **kw):  # noqa: ANN002, ANN003
            out = super().complete_fim(*a, **kw)
            out.extra["prompt_fit"] = 5
            return out

        def grow(self, prefix, suffix="", context_snippets=(), *, path="", language="", cancel=None,  # noqa: ANN001
                 from_level=0):  # noqa: ANN001
            self.grown.append((prefix, suffix, path, from_level))
            return SimpleNamespace(state="done")

    engine = ShrinkingFake("x = 1")
    comp = _completer(tmp_path, engine)
    assert not comp.can_grow and comp.grow(CancelToken()) == "unsupported"
    comp.generate(_inp(), CancelToken())
    call = engine.calls[-1]
    assert comp.can_grow and comp.grow(CancelToken()) == "done"
    assert engine.grown == [(call.prefix, call.suffix, "a.py", 5)]
    assert not comp.can_grow  # once per generation
    plain = _completer(tmp_path, FakeEngine("x = 1"))
    plain.generate(_inp(), CancelToken())
    assert not plain.can_grow  # a full prompt has nothing bigger
