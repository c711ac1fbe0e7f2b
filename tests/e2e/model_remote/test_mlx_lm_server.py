"""The remote backend against a real ``mlx_lm server`` on 127.0.0.1 serving the tiny model.

The server is started by the test (``python -m mlx_lm server``), polled for readiness with a
deadline and terminated after. Its greedy completions must equal the local MLX backend's for the
same prompt, with and without an adapter chosen per request.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.mlx
pytest.importorskip("mlx_lm")

from mochi_model.adapters.stack import Adapter, AdapterStack  # noqa: E402
from mochi_model.backends import load_backend  # noqa: E402
from mochi_model.backends.remote import RemoteBackend  # noqa: E402
from mochi_model.engine import InferenceEngine  # noqa: E402
from mochi_model.types import CancelToken  # noqa: E402
from tests.unit.model_mlx.conftest import random_adapter  # noqa: E402

START_DEADLINE_S = 90.0
PROMPTS = ["def add(a, b):\n    ", "class Config:\n    def __init__(self, path):\n        self."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Poll /health until it answers, the process dies, or the deadline passes (no sleeps)."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        try:
            proc.wait(timeout=0.1)  # doubles as the pause between polls
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"mlx_lm server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    raise AssertionError(f"mlx_lm server not ready after {START_DEADLINE_S:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, model folder) of a running mlx_lm server."""
    model = tmp_path_factory.mktemp("served") / "tiny-qwen2"
    shutil.copytree(tiny_model_dir, model)
    # mlx_lm's server reads a top-level rope_theta; transformers 5 nests it (the MLX backend
    # patches this when it loads, a stock server does not).
    cfg = json.loads((model / "config.json").read_text())
    cfg["rope_theta"] = cfg["rope_parameters"]["rope_theta"]
    (model / "config.json").write_text(json.dumps(cfg))
    port = _free_port()
    log = model.parent / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mlx_lm", "server", "--model", str(model),
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log)
        yield url, model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def engines(served) -> tuple[InferenceEngine, InferenceEngine]:
    """(remote engine, local MLX engine) over the same weights."""
    url, model = served
    remote = load_backend("remote", None, options={"remote_url": url, "model": str(model),
                                                   "server": "mlx_lm", "tokenizer": str(model)})
    local = load_backend("mlx", model, dtype="float32")
    return InferenceEngine(backend=remote), InferenceEngine(backend=local)


def _raw(engine: InferenceEngine, prefix: str, **kw: object) -> str:
    comp = engine.complete_fim(prefix, "\n", max_tokens=12, multiline=True, **kw)  # type: ignore[arg-type]
    return str(comp.extra["raw"])


def test_the_served_model_completes_exactly_like_the_local_mlx_backend(engines):
    remote, local = engines
    assert isinstance(remote.backend, RemoteBackend)
    assert remote.fim is not None and remote.fim.name == "qwen"
    for prefix in PROMPTS:
        got = remote.complete_fim(prefix, "\n", max_tokens=12, multiline=True)
        want = local.complete_fim(prefix, "\n", max_tokens=12, multiline=True)
        assert got.extra["raw"] == want.extra["raw"] and got.extra["raw"]
        assert got.text == want.text and got.finish_reason == want.finish_reason
        assert got.prompt_tokens == want.prompt_tokens


def test_an_adapter_chosen_per_request_matches_the_local_stack(engines, tmp_path):
    remote, local = engines
    adapter = random_adapter(tmp_path / "team", seed=11, rank=4, scale=3.0, name="team")
    base = [_raw(remote, p) for p in PROMPTS]
    remote.backend.use_adapter(str(adapter))
    local.set_adapter_stack(AdapterStack([Adapter.load(adapter)]))
    try:
        adapted = [_raw(remote, p) for p in PROMPTS]
        assert adapted == [_raw(local, p) for p in PROMPTS]
        assert adapted != base  # the server really switched weights
        remote.backend.use_adapter(None)
        assert [_raw(remote, p) for p in PROMPTS] == base  # and back, on the next request
    finally:
        remote.backend.use_adapter(None)
        local.set_adapter_stack(None)


def test_stop_sequences_and_cancellation_work_against_the_real_server(engines):
    remote, _ = engines
    full = _raw(remote, PROMPTS[1])
    stop = full[3:5]
    cut = remote.complete_fim(PROMPTS[1], "\n", max_tokens=12, multiline=True, stop=[stop])
    assert cut.finish_reason == "stop" and cut.extra["raw"] == full[: full.find(stop)]
    cancel = CancelToken()
    pieces: list[str] = []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        cancel.cancel()

    got = remote.complete_fim(PROMPTS[1], "\n", max_tokens=12, multiline=True, cancel=cancel, on_token=on_token)
    assert got.finish_reason == "cancelled" and len(got.extra["raw"]) < len(full)
    assert _raw(remote, PROMPTS[1]) == full  # the server serves the next request normally
