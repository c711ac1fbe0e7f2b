"""`mochi lsp --adapter FOLDER` follows the folder: a rewritten adapter is swapped in while it runs."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from mochi_model.adapters.format import WEIGHTS_FILE
from tests.e2e.lsp.harness import (
    TIMEOUT_S,
    _client,
    capabilities,
    inline,
    open_doc,
    status,
    stop_client,
    wait_for_engine,
    wait_for_log,
    wait_until,
)
from tests.unit.model.helpers import random_adapter, tiny_backend

pytestmark = pytest.mark.slow


def _replace_weights(shapes, folder: Path, stage: Path, seed: int) -> None:  # noqa: ANN001
    random_adapter(shapes, stage, seed=seed, name=folder.name)
    os.replace(stage / WEIGHTS_FILE, folder / WEIGHTS_FILE)  # atomic, as training writes it


async def test_a_rewritten_adapter_is_served_without_a_restart_and_a_corrupt_one_is_refused(
        fixture_project, tiny_model_dir, tmp_path):
    project = fixture_project("lsp/project")
    shapes = tiny_backend(tiny_model_dir)
    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    config = ClientServerConfig(server_command=[sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio",
                                                "--adapter", str(folder)], client_factory=_client)
    lsp = await config.start()
    try:
        options = {"model": {"path": str(tiny_model_dir), "backend": "torch", "dtype": "float32"},
                   "completion": {"debounce_ms": 0, "max_tokens": 4},
                   "server": {"index_on_start": False, "adapter_check_s": 0.01}}
        await asyncio.wait_for(lsp.initialize_session(types.InitializeParams(
            capabilities=capabilities("visual_studio_code", inline=True), root_uri=project.as_uri(),
            initialization_options=options)), TIMEOUT_S)
        st = await wait_for_engine(lsp)
        assert st["engine"] == "ready", st["engine_error"]
        assert st["adapters"] == ["proj:1"] and st["adapter_refresh"]["updates"] == 0
        assert "proj" in st["adapter_refresh"]["serving"]

        _replace_weights(shapes, folder, tmp_path / "stage-2", seed=2)
        st = await wait_until(lsp, lambda s: s["adapter_refresh"]["updates"] >= 1)  # each status asks again
        assert st["engine"] == "ready" and st["adapters"] == ["proj:1"] and st["adapter_refresh"]["error"] == ""
        assert "project proj" in await wait_for_log(lsp, "adapters updated")
        await status(lsp)  # answered after the `mochi/status` the swap sent (one ordered stream)
        told = [u for u in lsp.status_updates if hasattr(u, "adapter_update")]  # pygls gives attribute objects
        assert told and told[0].adapter_update.startswith("adapters updated") and told[0].adapters == ["proj:1"]

        (tmp_path / "torn").write_bytes(b"not safetensors")
        os.replace(tmp_path / "torn", folder / WEIGHTS_FILE)
        st = await wait_until(lsp, lambda s: s["adapter_refresh"]["error"] != "")
        assert "still serving project proj" in st["adapter_refresh"]["error"] and st["adapter_refresh"]["updates"] == 1
        uri = open_doc(lsp, project / "pkg" / "new.py", "def add(a, b):\n    return a")
        await inline(lsp, uri, 1, 12)  # the old stack still serves (random weights: the text is noise)
        st = await status(lsp)
        assert st["engine"] == "ready" and st["generated"] + st["empty"] == 1
        await asyncio.wait_for(lsp.shutdown_session(), TIMEOUT_S)
    finally:
        await stop_client(lsp)
