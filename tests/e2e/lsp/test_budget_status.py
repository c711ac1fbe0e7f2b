"""End to end: the server tells the editor when the time budget cuts suggestions short.

The server runs over stdio with a fake engine that answers like the real one does when its budget
runs out: ``finish_reason="time"`` with partial text (cut), or nothing with the engine's
``budget_stats.expired`` counted (the prompt was still being prefilled). No timing involved.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.lsp.harness import inline, open_doc, python_server, running_server, status


def serve() -> None:
    """The server process: `create_server` with the budget fake (run by the test below)."""
    from mochi_ls.server import create_server
    from mochi_model.engine import BudgetStats
    from mochi_model.fake import FakeEngine
    from mochi_model.types import Completion

    class BudgetFake(FakeEngine):
        def __init__(self) -> None:
            super().__init__("return a + b")
            self.budget_stats = BudgetStats()

        def complete_fim(self, prefix: str, suffix: str = "", *args: Any, **kw: Any) -> Completion:
            line = prefix.rsplit("\n", 1)[-1]
            if line.endswith("cut = "):
                self.budget_stats.record(True, 2000.0, 3)
                return Completion(text="compute(", finish_reason="time", extra={"budget_cut": True})
            if line.endswith("slow = "):
                self.budget_stats.record(False, 2000.0, 0)
                return Completion(text="", finish_reason="time", extra={"budget_cut": True})
            return super().complete_fim(prefix, suffix, *args, **kw)

    create_server(engine=BudgetFake()).start_io()


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


async def test_status_reports_suggestions_cut_and_requests_expired_by_the_time_budget(project):
    options = {"completion": {"debounce_ms": 0, "time_budget_ms": 1500}, "server": {"index_on_start": False}}
    command = python_server("tests.e2e.lsp.test_budget_status")
    async with running_server(project, options=options, command=command) as lsp:
        doc = "def f(a, b):\n    x = \n    cut = \n    slow = \n"
        uri = open_doc(lsp, project / "pkg" / "budget.py", doc)
        before = await status(lsp)
        assert before["budget"]["cut"] == 0 and before["budget"]["expired"] == 0

        assert await inline(lsp, uri, 1, 8) == "return a + b"  # within budget
        assert await inline(lsp, uri, 2, 10) == "compute("  # cut: shown anyway
        assert await inline(lsp, uri, 3, 11) is None  # expired: nothing to show
        st = await status(lsp)
        updates = list(lsp.status_updates)  # type: ignore[attr-defined]

    budget = st["budget"]
    assert budget["cut"] == 1 and budget["expired"] == 1
    assert budget["recent"] == 2 and budget["window"] == 3
    assert budget["time_budget_ms"] == 1500
    assert budget["last_at"].endswith("Z") and budget["last_latency_ms"] >= 0
    # One `mochi/status` per finished generation; those the budget ended say so (they arrive before
    # the `mochi.status` answer: the server sends both in order on one stream).
    per_request = [u for u in updates if hasattr(u, "budget_cut")]  # pygls gives attribute objects
    assert [u.budget_cut for u in per_request] == [False, True, True]
    assert per_request[1].budget.cut == 1 and per_request[2].budget.expired == 1
    assert all(u.state == "ready" for u in per_request)
