"""The request gate: newest request per document wins; debounce wakes early when superseded."""

from __future__ import annotations

import asyncio
import time

from mochi_ls.scheduling import RequestGate


def test_opening_a_request_supersedes_the_live_one_of_the_same_document_only():
    gate = RequestGate()
    a = gate.open("doc1")
    b = gate.open("doc2")
    c = gate.open("doc1")
    assert a.cancelled and a.reason == "superseded" and a.token.cancelled
    assert not b.cancelled and not c.cancelled
    assert gate.stats.superseded == 1 and gate.stats.opened == 3
    assert gate.is_latest(c) and not gate.is_latest(a)


async def test_debounce_runs_the_request_after_the_delay_when_nothing_newer_came():
    gate = RequestGate()
    t = gate.open("d")
    t0 = time.perf_counter()
    assert await gate.debounce(t, 0.05) is True
    assert time.perf_counter() - t0 >= 0.045


async def test_a_superseded_request_leaves_its_debounce_at_once():
    gate = RequestGate()
    first = gate.open("d")
    waiting = asyncio.ensure_future(gate.debounce(first, 30.0))
    await asyncio.sleep(0)  # let it start waiting
    t0 = time.perf_counter()
    gate.open("d")
    assert await asyncio.wait_for(waiting, 5) is False
    assert time.perf_counter() - t0 < 1.0
    assert gate.stats.debounced == 1


def test_client_cancellation_and_closing_documents():
    gate = RequestGate()
    t = gate.open("d")
    gate.cancel(t)
    gate.cancel(t)  # idempotent
    assert t.reason == "cancelled" and gate.stats.cancelled == 1
    u = gate.open("e")
    gate.cancel_document("e")
    assert u.cancelled
    v = gate.open("f")
    gate.close(v)
    assert not gate.is_latest(v)
    w = gate.open("g")
    gate.cancel_all()
    assert w.cancelled
