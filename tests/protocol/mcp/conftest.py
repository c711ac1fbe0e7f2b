"""Fixtures for the MCP tests: the `shop` fixture project with a real index, and an in-memory client."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp.client import Client

from mochi_mcp.server import build_server
from mochi_mcp.workspace import Workspace
from mochi_model.holder import EngineFactory, EngineHolder
from mochi_model.types import Engine

FIXTURE = Path(__file__).parents[2] / "fixtures" / "mcp" / "shop"


@pytest.fixture(scope="session")
def _indexed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project indexed once per session (real tree-sitter, real LanceDB files)."""
    from mochi_index import ProjectIndex

    root = tmp_path_factory.mktemp("mcp_indexed") / "shop"
    shutil.copytree(FIXTURE, root)
    idx = ProjectIndex.open(root, create=True)
    idx.update()
    idx.close()
    return root


@pytest.fixture
def shop(_indexed_template: Path, tmp_path: Path) -> Path:
    """A private copy of the indexed shop project (tests may edit it)."""
    dest = tmp_path / "shop"
    shutil.copytree(_indexed_template, dest, symlinks=True)
    return dest


@pytest.fixture
def bare_shop(tmp_path: Path) -> Path:
    """The shop project with no index."""
    dest = tmp_path / "bare" / "shop"
    shutil.copytree(FIXTURE, dest)
    return dest




@asynccontextmanager
async def connect(root: Path, engine: Engine | None = None, *, factory: EngineFactory | None = None,
                  timeout_s: float = 30.0) -> AsyncIterator[Client]:
    """An in-memory SDK client connected to a Mochi MCP server for ``root``."""
    ws = Workspace(root)
    server = build_server(ws, EngineHolder(engine, factory), timeout_s=timeout_s)
    try:
        async with Client(server) as client:
            yield client
    finally:
        ws.close()


def text_of(result) -> str:  # noqa: ANN001 - CallToolResult
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
