"""Bad input, a missing index, a model that fails to load and timeouts are tool errors; serving goes on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect, text_of

GOOD = "```python\nx = 1\n```"


async def _still_serving(client) -> None:  # noqa: ANN001
    ok = await client.call_tool("complete_code", {"prefix": "def f():\n    return "})
    assert not ok.is_error, text_of(ok)


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("domain_query", {}, "instruction\n  Field required"),
    ("domain_query", {"instruction": ""}, "at least 1 character"),
    ("domain_query", {"instruction": "x", "mode": "wild"}, "'auto', 'conservative' or 'creative'"),
    ("domain_query", {"instruction": "x", "max_tokens": 0}, "greater than or equal to 1"),
    ("domain_query", {"instruction": "   "}, "instruction is empty"),
    ("complete_code", {"suffix": "x"}, "prefix\n  Field required"),
    ("complete_code", {"prefix": "x", "language": "cobol"}, "unknown language 'cobol'"),
    ("complete_code", {"prefix": "", "suffix": ""}, "prefix is empty"),
    ("generate_diff", {"file_path": "shop/pricing.py"}, "instruction\n  Field required"),
    ("suggest_pattern", {}, "pass goal"),
    ("suggest_pattern", {"goal": "x", "language": "cobol"}, "unknown language"),
])
async def test_missing_or_invalid_arguments_are_tool_errors_with_the_reason(
        shop: Path, tool: str, args: dict, message: str) -> None:
    async with connect(shop, FakeEngine(GOOD)) as client:
        result = await client.call_tool(tool, args)
        assert result.is_error and message in text_of(result), text_of(result)
        await _still_serving(client)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "shop/../../outside.py", "../" * 1300 + "etc/passwd"])
@pytest.mark.parametrize("tool", ["domain_query", "complete_code", "generate_diff", "suggest_pattern"])
async def test_every_tool_refuses_paths_outside_the_project(shop: Path, tool: str, path: str) -> None:
    args = {"domain_query": {"instruction": "x"}, "complete_code": {"prefix": "x"},
            "generate_diff": {"instruction": "x"}, "suggest_pattern": {"goal": "x"}}[tool]
    async with connect(shop, FakeEngine(GOOD)) as client:
        result = await client.call_tool(tool, {**args, "file_path": path})
        assert result.is_error and "outside the project root" in text_of(result)
        assert len(text_of(result)) < 500  # a long path is quoted in part, not whole
        await _still_serving(client)


async def test_a_symlink_out_of_the_project_and_unreadable_files_are_refused(shop: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.py").write_text("TOKEN = 'x'\n")
    (shop / "shop" / "leak.py").symlink_to(tmp_path / "secret.py")
    (shop / "blob.py").write_bytes(b"\x00\xff" * 64)
    async with connect(shop, FakeEngine(GOOD)) as client:
        leak = await client.call_tool("generate_diff", {"file_path": "shop/leak.py", "instruction": "x"})
        blob = await client.call_tool("domain_query", {"file_path": "blob.py", "instruction": "x"})
        missing = await client.call_tool("generate_diff", {"file_path": "shop/nope.py", "instruction": "x"})
    assert "outside the project root" in text_of(leak)
    assert "looks binary" in text_of(blob)
    assert "does not exist" in text_of(missing)


async def test_without_an_index_the_tools_that_need_it_say_to_run_mochi_index(bare_shop: Path) -> None:
    async with connect(bare_shop, FakeEngine(GOOD)) as client:
        query = await client.call_tool("domain_query", {"instruction": "refund"})
        pattern = await client.call_tool("suggest_pattern", {"goal": "logging"})
        with pytest.raises(MCPError, match="mochi index"):
            await client.read_resource("mochi://index/stats")
        status = (await client.read_resource("mochi://server/status")).contents[0].text
        await _still_serving(client)
    for result in (query, pattern):
        assert result.is_error and f"run `mochi index --project {bare_shop.resolve()}`" in text_of(result)
    assert '"indexed": false' in status


async def test_a_model_that_fails_to_load_is_reported_on_each_call_and_loaded_only_once(shop: Path) -> None:
    attempts: list[int] = []

    def factory(progress):  # noqa: ANN001
        attempts.append(1)
        raise OSError("model file /nowhere/model.gguf not found")

    async with connect(shop, factory=factory) as client:
        first = await client.call_tool("complete_code", {"prefix": "x = "})
        second = await client.call_tool("domain_query", {"instruction": "refund"})
        status = (await client.read_resource("mochi://server/status")).contents[0].text
        patterns = await client.call_tool("suggest_pattern", {"goal": "logging", "example": False})
    for result in (first, second):
        assert result.is_error and "the model failed to load" in text_of(result)
        assert "/nowhere/model.gguf" in text_of(result)
    assert attempts == [1] and '"state": "failed"' in status and not patterns.is_error


async def test_the_model_loads_lazily_once_and_reports_progress(shop: Path) -> None:
    built: list[FakeEngine] = []
    messages: list[str] = []

    def factory(progress):  # noqa: ANN001
        progress("adapters: none (base model only)")
        built.append(FakeEngine("a + b"))
        return built[-1]

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with connect(shop, factory=factory) as client:
        status = (await client.read_resource("mochi://server/status")).contents[0].text
        assert '"state": "none"' in status and built == []
        first = await client.call_tool("complete_code", {"prefix": "x = "}, progress_callback=on_progress)
        again = await client.call_tool("complete_code", {"prefix": "y = "})
        status = (await client.read_resource("mochi://server/status")).contents[0].text
    assert text_of(first) == text_of(again) == "a + b" and len(built) == 1
    assert any(m.startswith("loading model") for m in messages)
    assert "adapters: none (base model only)" in messages
    assert any(m.startswith("model loaded") for m in messages)
    assert '"state": "ready"' in status and "base model only" in status


async def test_a_generation_past_the_time_limit_is_a_timeout_error(shop: Path) -> None:
    slow = FakeEngine("x" * 4000, token_delay_s=0.01)
    async with connect(shop, slow, timeout_s=0.05) as client:
        result = await client.call_tool("complete_code", {"prefix": "x = ", "max_tokens": 1000})
        assert result.is_error and "timed out after 0.05s" in text_of(result) and "--timeout" in text_of(result)
        slow.token_delay_s = 0.0
        await _still_serving(client)


async def test_preload_loads_in_the_background_and_calls_wait_for_it(shop: Path) -> None:
    from mochi_model.holder import EngineHolder

    release = threading.Event()

    def factory(progress):  # noqa: ANN001
        assert release.wait(10)
        return FakeEngine("done")

    provider = EngineHolder(factory=factory, description="tiny")
    thread = provider.preload()
    assert not provider.loaded
    release.set()
    thread.join(10)
    assert provider.loaded and provider.get().complete_fim("x").text == "done"


async def test_a_cancelled_call_stops_the_generation_at_its_next_token(shop: Path) -> None:
    import anyio
    from mcp.client import Client

    from mochi_mcp.server import build_server
    from mochi_mcp.workspace import Workspace
    from mochi_model.holder import EngineHolder

    slow = FakeEngine("x" * 40000, token_delay_s=0.005)
    provider = EngineHolder(slow)
    async with Client(build_server(Workspace(shop), provider, timeout_s=60)) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "complete_code", {"prefix": "x = ", "max_tokens": 4000})
            assert await anyio.to_thread.run_sync(slow.started.wait, 10)
            tg.cancel_scope.cancel()
        # the worker holds the generation lock until it stops
        assert await anyio.to_thread.run_sync(lambda: provider.generation_lock.acquire(timeout=10))
        provider.generation_lock.release()
        assert slow.calls[0].finish_reason == "cancelled"
        slow.token_delay_s = 0.0
        await _still_serving(client)


async def test_an_index_from_another_mochi_version_is_reported_and_completion_goes_on_without_it(
        shop: Path) -> None:
    index = shop / ".mochi" / "index"  # the schema stamp lives in the store CURRENT names (mochi_index.stores)
    current = (index / "CURRENT").read_text().strip() if (index / "CURRENT").exists() else "."
    (index / current / "schema.json").write_text('{"schema_version": -1}')
    async with connect(shop, FakeEngine("a + b")) as client:
        query = await client.call_tool("domain_query", {"instruction": "refund"})
        done = await client.call_tool("complete_code", {"prefix": "def add(a, b):\n    return "})
    assert query.is_error and "mochi index --full" in text_of(query)
    assert not done.is_error and done.structured_content["indexed"] is False


@pytest.mark.parametrize("path", ["a/" * 3000 + "x.py", "b" * 300 + ".py", "c/" * 2100 + "../" * 2100 + "x.py"],
                         ids=["path-over-PATH_MAX", "name-over-NAME_MAX", "long-then-back-inside"])
@pytest.mark.parametrize("tool", ["domain_query", "complete_code", "generate_diff", "suggest_pattern"])
async def test_every_tool_refuses_a_path_longer_than_the_os_allows_as_a_tool_error(
        shop: Path, tool: str, path: str, caplog: pytest.LogCaptureFixture) -> None:
    args = {"domain_query": {"instruction": "x"}, "complete_code": {"prefix": "x"},
            "generate_diff": {"instruction": "x"}, "suggest_pattern": {"goal": "x", "example": False}}[tool]
    async with connect(shop, FakeEngine(GOOD)) as client:
        result = await client.call_tool(tool, {**args, "file_path": path})
        assert result.is_error and "longer than the system allows" in text_of(result), text_of(result)
        assert len(text_of(result)) < 400  # the path is not echoed whole
        await _still_serving(client)
    assert not [r for r in caplog.records if r.exc_info], "no server traceback for bad input"
