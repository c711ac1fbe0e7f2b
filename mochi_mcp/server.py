"""The MCP server: four tools and three resources over the official SDK's ``MCPServer``.

Thin by design: each handler validates arguments through its typed signature (the published input
schema), gets the engine (loading it on first use, with progress notifications), runs the tool's
plain function from ``mochi_mcp.*`` in a worker thread with a time limit and a cancel token, and
turns Mochi's errors into tool errors with the same message. Nothing here decides what to generate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from mochi_core.errors import MochiError
from mochi_mcp import complete, diff_tool, patterns, query
from mochi_mcp.errors import GenerationTimeout
from mochi_mcp.generation import DEFAULT_TIMEOUT_S, Limits
from mochi_mcp.workspace import Workspace
from mochi_model.holder import EngineHolder, ModelUnavailable
from mochi_model.types import CancelToken, Engine

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Mochi runs a local code model that knows this project (its index and adapters). Use domain_query to "
    "write project-specific code, complete_code for fill-in-the-middle completion, generate_diff for a "
    "verified unified diff of a change to a file, and suggest_pattern to learn the project's own idioms. "
    "Paths are relative to the project root. Resources: mochi://index/stats, mochi://project/conventions, "
    "mochi://server/status."
)
GRACE_S = 15.0  # beyond the generation time limit, for prefill and retrieval before giving up

FilePath = Annotated[str | None, Field(description="A file inside the project, relative to its root (or absolute).")]
MaxTokens = Annotated[int | None, Field(ge=1, le=4096, description="Most tokens to generate (default per tool).")]
Language = Annotated[str | None, Field(description="python, typescript, tsx, javascript, go, rust or java; "
                                                   "default: from file_path's extension.")]


class _Runner:
    """Runs a tool's plain function off the event loop with the engine, a time limit and cancellation."""

    def __init__(self, provider: EngineHolder, timeout_s: float) -> None:
        self.provider = provider
        self.timeout_s = timeout_s

    async def engine(self, ctx: Context) -> Engine:
        if self.provider.loaded:
            self.provider.refresh_adapters()  # changed adapters on disk: swapped in the background
            return self.provider.require()
        step = 0

        def progress(message: str) -> None:  # called in the loading thread
            nonlocal step
            step += 1
            anyio.from_thread.run(ctx.report_progress, step, None, message)

        await ctx.report_progress(0, None, "the model loads on the first call (once per server)")
        return await anyio.to_thread.run_sync(lambda: self.provider.require(progress), abandon_on_cancel=True)

    async def run(self, ctx: Context, fn: Callable[[Engine | None, Limits], dict[str, Any]],
                  render: Callable[[dict[str, Any]], str], *, needs_engine: bool = True) -> CallToolResult:
        token = CancelToken()
        limits = Limits(timeout_s=self.timeout_s, cancel=token)
        try:
            engine = await self.engine(ctx) if needs_engine else None

            def work() -> dict[str, Any]:
                with self.provider.generation_lock:
                    return fn(engine, limits)

            try:
                with anyio.fail_after(self.timeout_s + GRACE_S):
                    result = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            except TimeoutError:
                token.cancel()
                raise GenerationTimeout(
                    f"the tool did not finish within {self.timeout_s + GRACE_S:g}s and was stopped; ask for less "
                    "or restart `mochi serve` with a larger --timeout"
                ) from None
            except anyio.get_cancelled_exc_class():
                token.cancel()  # the worker stops at its next token
                raise
        except MochiError as exc:
            raise ToolError(str(exc)) from exc
        return CallToolResult(content=[TextContent(type="text", text=render(result))], structured_content=result)


def build_server(workspace: Workspace, provider: EngineHolder, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 name: str = "mochi", log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING") -> MCPServer:
    """An ``MCPServer`` serving ``workspace`` with the engine from ``provider``.

    Args:
        workspace: project root, config and index.
        provider: the engine, ready or loaded lazily on the first tool call.
        timeout_s: generation time limit per tool call.
        log_level: the SDK's (and, over HTTP, uvicorn's) log level; INFO logs each HTTP request.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        mochi_version = version("mochi-code")
    except PackageNotFoundError:  # running from a source tree
        mochi_version = "0"
    mcp = MCPServer(name, instructions=INSTRUCTIONS, version=mochi_version, log_level=log_level)
    runner = _Runner(provider, timeout_s)
    ws = workspace

    @mcp.tool(description="Write project-specific code for an instruction, grounded on the project's own code "
              "(retrieved from its index) and the file being edited. Modes: conservative (greedy, answer checked "
              "against the index), creative (more varied), auto (retries conservatively when confidence is low). "
              "The result names the mode used (one of the three), a confidence in [0, 1] (token probability, halved per "
              "call to a symbol the project lacks, times 0.3 when the answer was cut off at max_tokens) and any "
              "calls to symbols the project lacks.")
    async def domain_query(
        instruction: Annotated[str, Field(min_length=1, description="What code to write.")],
        ctx: Context,
        context: Annotated[str, Field(description="Code or notes the answer should take into account.")] = "",
        file_path: FilePath = None,
        mode: Annotated[Literal["auto", "conservative", "creative"], Field(description="Generation mode.")] = "auto",
        max_tokens: MaxTokens = None,
    ) -> CallToolResult:
        return await runner.run(ctx, lambda e, lim: query.domain_query(
            ws, e, instruction=instruction, context=context, file_path=file_path, mode=mode,
            max_tokens=max_tokens, limits=lim), query.render_text)

    @mcp.tool(description="Fill-in-the-middle code completion at a cursor: the code before it (prefix) and "
              "after it (suffix). Uses the same prompt, project context and post-processing as Mochi's editor "
              "completions. Returns only the inserted text.")
    async def complete_code(
        prefix: Annotated[str, Field(description="Code before the cursor.")],
        ctx: Context,
        suffix: Annotated[str, Field(description="Code after the cursor.")] = "",
        file_path: FilePath = None,
        language: Language = None,
        max_tokens: MaxTokens = None,
    ) -> CallToolResult:
        return await runner.run(ctx, lambda e, lim: complete.complete_code(
            ws, e, prefix=prefix, suffix=suffix, file_path=file_path, language=language, max_tokens=max_tokens,
            limits=lim), lambda r: r["completion"])

    @mcp.tool(description="A unified diff (git style, a/PATH -> b/PATH) that applies an instruction to a project "
              "file or to a piece of code. The diff is verified to apply cleanly before it is returned. Give "
              "file_path for a file, original_code for loose code, or both to change one region of a large file.")
    async def generate_diff(
        instruction: Annotated[str, Field(min_length=1, description="The change to make.")],
        ctx: Context,
        file_path: FilePath = None,
        original_code: Annotated[str | None, Field(description="The code to change (with file_path: an exact "
                                                               "excerpt of that file).")] = None,
        max_tokens: MaxTokens = None,
    ) -> CallToolResult:
        return await runner.run(ctx, lambda e, lim: diff_tool.generate_diff(
            ws, e, instruction=instruction, file_path=file_path, original_code=original_code,
            max_tokens=max_tokens, limits=lim), lambda r: r["diff"])

    @mcp.tool(description="The project's own patterns (how it raises and logs errors, decorators, call sequences, "
              "imports, naming) relevant to a goal or a piece of code, with counts and example locations "
              "(path:line), plus a short generated example that follows them when the model writes it in time (the "
              "patterns are returned either way; example_skipped says why an example is missing).")
    async def suggest_pattern(
        ctx: Context,
        goal: Annotated[str | None, Field(description="What you want to do, e.g. 'handle a config error'.")] = None,
        code: Annotated[str | None, Field(description="A code excerpt to find matching patterns for.")] = None,
        file_path: FilePath = None,
        language: Language = None,
        example: Annotated[bool, Field(description="Also generate a short example (needs the model).")] = True,
    ) -> CallToolResult:
        problem = ""
        if example:
            try:  # the patterns need no model: one that cannot load only costs the example
                await runner.engine(ctx)
            except ModelUnavailable as exc:
                problem = str(exc)
        return await runner.run(ctx, lambda e, lim: patterns.suggest_pattern(
            ws, e, goal=goal, code=code, file_path=file_path, language=language, example=example, limits=lim,
            engine_problem=problem), patterns.render_text, needs_engine=example and not problem)

    async def _resource(fn: Callable[[], str]) -> str:
        try:
            return await anyio.to_thread.run_sync(fn)
        except MochiError as exc:
            raise ResourceError(str(exc)) from exc

    @mcp.resource("mochi://index/stats", name="index-stats", mime_type="application/json",
                  description="Index statistics: files, symbols, chunks and patterns per language and kind.")
    async def index_stats() -> str:
        return await _resource(lambda: patterns.stats_json(ws))

    @mcp.resource("mochi://project/conventions", name="conventions", mime_type="text/markdown",
                  description="The project's most frequent patterns, with counts and example locations.")
    async def conventions() -> str:
        return await _resource(lambda: patterns.conventions_markdown(ws))

    @mcp.resource("mochi://server/status", name="status", mime_type="application/json",
                  description="Project root, whether an index exists, and the model and adapters loaded.")
    async def status() -> str:
        import json

        def read() -> str:
            provider.refresh_adapters()
            return json.dumps({"root": str(ws.root), "project": ws.project_name,
                               "indexed": ws.index(required=False) is not None,
                               "model": provider.status(), "timeout_s": timeout_s}, indent=2)

        return await _resource(read)

    return mcp
