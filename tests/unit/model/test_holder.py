"""Lazy engine loading in the background, and failures that become a state, not a crash."""

from __future__ import annotations

import threading

from mochi_ls.engine_host import EngineHost
from mochi_model.fake import FakeEngine


def test_an_engine_given_up_front_is_ready():
    engine = FakeEngine()
    host = EngineHost(engine=engine)
    assert host.state == "ready" and host.get() is engine


def test_the_factory_runs_in_the_background_and_reports_states():
    gate = threading.Event()
    states: list[tuple[str, str]] = []

    def factory() -> FakeEngine:
        gate.wait(5)
        return FakeEngine()

    host = EngineHost(factory=factory, on_state=lambda s, d: states.append((s, d)))
    host.start()
    assert host.state == "loading" and host.get() is None  # no wait: not there yet
    gate.set()
    assert host.wait(5)
    assert host.get() is not None and host.state == "ready"
    assert [s for s, _ in states] == ["loading", "ready"] and states[-1][1] == "fake/fake-coder"


def test_a_factory_that_raises_leaves_a_failed_state_with_the_reason():
    def factory() -> FakeEngine:
        raise RuntimeError("no such file: model.gguf")

    host = EngineHost(factory=factory)
    host.start()
    assert host.wait(5)
    assert host.state == "failed" and "no such file: model.gguf" in host.error
    assert host.get(0.1) is None


def test_replace_loads_the_new_model():
    first, second = FakeEngine("one"), FakeEngine("two")
    host = EngineHost(factory=lambda: first)
    host.start()
    host.wait(5)
    assert host.get() is first
    host.replace(lambda: second)
    assert host.wait(5) and host.get(5) is second
