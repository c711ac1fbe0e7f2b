"""Helpers for MCP end-to-end tests: an indexed copy of the shop project and a stdio client."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

FIXTURE = Path(__file__).parents[2] / "fixtures" / "mcp" / "shop"
BIN = Path(sys.executable).parent  # the venv's bin: `mochi` and `python` live here


@pytest.fixture
def indexed_shop(tmp_path: Path) -> Path:
    from mochi_index import ProjectIndex

    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    idx = ProjectIndex.open(root, create=True)
    idx.update()
    idx.close()
    return root


def server_env() -> dict[str, str]:
    """What the server process needs beyond the SDK's safe defaults (isolated MOCHI_HOME, offline hub)."""
    keep = ("MOCHI_HOME", "MOCHI_MODELS", "HF_HUB_OFFLINE", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


@asynccontextmanager
async def stdio(command: str, args: list[str], *, cwd: Path, log: Path, timeout_s: float = 120.0
                ) -> AsyncIterator[Client]:
    """Launch ``command args`` as an MCP server over stdio; its stderr goes to ``log``."""
    params = StdioServerParameters(command=command, args=args, cwd=cwd, env=server_env())
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=timeout_s) as client:
            yield client
