"""The one engine holder (LSP and MCP): lazy loading, failures that become a state, not a crash."""

from __future__ import annotations

import threading

import pytest

from mochi_model.fake import FakeEngine
from mochi_model.holder import EngineHolder, ModelUnavailable


def test_an_engine_given_up_front_is_ready():
    engine = FakeEngine()
    host = EngineHolder(engine=engine)
    assert host.state == "ready" and host.get() is engine


def test_the_factory_runs_in_the_background_and_reports_states():
    gate = threading.Event()
    states: list[tuple[str, str]] = []

    def factory(progress) -> FakeEngine:  # noqa: ANN001
        gate.wait(5)
        return FakeEngine()

    host = EngineHolder(factory=factory, on_state=lambda s, d: states.append((s, d)))
    host.start()
    assert host.state == "loading" and host.get() is None  # no wait: not there yet
    gate.set()
    assert host.wait(5)
    assert host.get() is not None and host.state == "ready"
    assert [s for s, _ in states] == ["loading", "ready"] and states[-1][1] == "fake/fake-coder"


def test_a_factory_that_raises_leaves_a_failed_state_with_the_reason():
    def factory(progress) -> FakeEngine:  # noqa: ANN001
        raise RuntimeError("no such file: model.gguf")

    host = EngineHolder(factory=factory)
    host.start()
    assert host.wait(5)
    assert host.state == "failed" and "no such file: model.gguf" in host.error
    assert host.get(0.1) is None


def test_replace_loads_the_new_model():
    first, second = FakeEngine("one"), FakeEngine("two")
    host = EngineHolder(factory=lambda progress: first)
    host.start()
    host.wait(5)
    assert host.get() is first
    host.replace(lambda progress: second)
    assert host.wait(5) and host.get(5) is second


def test_require_loads_on_first_use_reports_progress_and_remembers_a_failure():
    calls: list[int] = []

    def factory(progress) -> FakeEngine:  # noqa: ANN001
        calls.append(1)
        progress("adapters: none (base model only)")
        raise RuntimeError("weights missing")

    holder = EngineHolder(factory=factory, description="tiny")
    messages: list[str] = []
    with pytest.raises(ModelUnavailable, match="weights missing"):
        holder.require(messages.append)
    with pytest.raises(ModelUnavailable, match="weights missing"):
        holder.require()
    assert calls == [1] and holder.state == "failed"
    assert messages[0] == "loading model tiny" and "adapters: none (base model only)" in messages
    assert holder.status()["error"].startswith("the model failed to load")


def test_require_returns_the_same_engine_to_every_caller():
    engine = FakeEngine()
    holder = EngineHolder(factory=lambda progress: engine)
    assert holder.require() is engine and holder.require() is engine and holder.get() is engine
    assert holder.status()["state"] == "ready" and holder.status()["model_id"] == "fake/fake-coder"
