"""`mochi lsp` with a real engine (no fake): the tiny random Qwen2 loaded by mochi_model.loader."""

from __future__ import annotations

import asyncio
import sys

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.e2e.lsp.harness import (
    TIMEOUT_S,
    _client,
    capabilities,
    inline,
    open_doc,
    status,
    stop_client,
    wait_for_engine,
)

pytestmark = pytest.mark.slow


async def test_the_server_loads_the_configured_model_in_the_background_and_completes(fixture_project, tiny_model_dir):
    project = fixture_project("lsp/project")
    config = ClientServerConfig(server_command=[sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio"],
                                client_factory=_client)
    lsp = await config.start()
    try:
        options = {"model": {"path": str(tiny_model_dir), "backend": "torch", "dtype": "float32"},
                   "completion": {"debounce_ms": 0, "max_tokens": 8}, "server": {"index_on_start": False}}
        await asyncio.wait_for(lsp.initialize_session(types.InitializeParams(
            capabilities=capabilities("visual_studio_code", inline=True), root_uri=project.as_uri(),
            initialization_options=options)), TIMEOUT_S)
        st = await wait_for_engine(lsp)
        assert st["engine"] == "ready", st["engine_error"]
        uri = open_doc(lsp, project / "pkg" / "new.py", "def add(a, b):\n    return a")
        await inline(lsp, uri, 1, 12)  # random weights: the text is noise, the path is what we test
        st = await status(lsp)
        assert st["generated"] + st["empty"] == 1 and st["model"]
        await asyncio.wait_for(lsp.shutdown_session(), TIMEOUT_S)
    finally:
        await stop_client(lsp)
