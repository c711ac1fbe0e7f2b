"""A loaded engine follows its adapters on disk: rewritten files and newer installed versions are
swapped in without reloading the model; a bad new file leaves the old stack serving."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mochi_core.config import MochiConfig
from mochi_model.adapter_refresh import AdapterChoice
from mochi_model.adapters.format import WEIGHTS_FILE, BaseModelRef
from mochi_model.adapters.stack import load_adapter
from mochi_model.holder import EngineHolder, real_engine_factory
from tests.unit.model.helpers import fused_reference_logits, random_adapter, tiny_backend

PROMPT = "def add(a, b):\n    return"


@pytest.fixture(scope="module")
def shapes(tiny_model_dir: Path):
    """A backend of the tiny model, only to write adapters that fit it."""
    return tiny_backend(tiny_model_dir)


def _config(model_dir: Path) -> MochiConfig:
    config = MochiConfig()
    config.model.path, config.model.backend, config.model.dtype = str(model_dir), "torch", "float32"
    return config


def _holder(config: MochiConfig, choice: AdapterChoice, *, every_s: float = 3600.0) -> EngineHolder:
    holder = EngineHolder(factory=real_engine_factory(config, choice.root, choice=choice), adapters=choice,
                          adapter_check_s=every_s, description="tiny")
    holder.require()
    return holder


def _rewrite(shapes, folder: Path, tmp: Path, **kw) -> None:  # noqa: ANN001
    """Replace ``folder``'s weights atomically, as `mochi train project --from-index` does."""
    stage = tmp / f"stage-{kw.get('seed', 0)}"
    random_adapter(shapes, stage, name=folder.name, **kw)
    os.replace(stage / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    os.replace(stage / "adapter_config.json", folder / "adapter_config.json")


def test_a_rewritten_adapter_is_swapped_in_without_reloading_the_model(shapes, tiny_model_dir, tmp_path):
    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    holder = _holder(_config(tiny_model_dir), AdapterChoice(_config(tiny_model_dir), tmp_path, specs=((folder, 1.0),)))
    engine = holder.get()
    model, backend, old_stack = engine.backend.model, engine.backend, engine.adapter_stack
    ids = backend.encode(PROMPT)
    before = backend.logits_for(ids)
    engine.complete_fim(PROMPT, max_tokens=2)
    assert engine._gen.cached_len(backend.encode(engine._fim_prompt(PROMPT, "", (), path="", language=""))) > 0
    assert holder.check_adapters() == "unchanged"

    _rewrite(shapes, folder, tmp_path, seed=2)
    assert holder.check_adapters() == "updated"
    assert holder.get() is engine and engine.backend is backend and backend.model is model  # no reload
    assert engine.adapter_stack is not old_stack
    after = backend.logits_for(ids)
    assert not np.allclose(before, after, atol=1e-3)
    np.testing.assert_allclose(after, fused_reference_logits(tiny_model_dir, ids, [(load_adapter(folder), 1.0)]),
                               atol=2e-4, rtol=1e-4)
    assert engine._gen.cached_len(backend.encode(engine._fim_prompt(PROMPT, "", (), path="", language=""))) == 0
    status = holder.status()
    assert status["adapter_refresh"]["updates"] == 1 and status["adapter_refresh"]["error"] == ""
    assert "proj" in status["adapter_refresh"]["serving"] and status["adapters"] == ["proj:1"]
    assert any(m.startswith("adapters updated: project proj") for m in holder.messages)
    assert engine.complete_fim(PROMPT, max_tokens=2).finish_reason != "cancelled"
    assert holder.check_adapters() == "unchanged"


def test_a_corrupt_or_mismatched_new_adapter_keeps_the_old_stack_serving(shapes, tiny_model_dir, tmp_path, caplog):
    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    told: list[tuple[str, str]] = []
    config = _config(tiny_model_dir)
    choice = AdapterChoice(config, tmp_path, specs=((folder, 1.0),))
    holder = EngineHolder(factory=real_engine_factory(config, tmp_path, choice=choice), adapters=choice,
                          adapter_check_s=3600, on_adapters=lambda level, msg: told.append((level, msg)))
    engine = holder.require()
    stack, ids = engine.adapter_stack, engine.backend.encode(PROMPT)
    before = engine.backend.logits_for(ids)

    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(b"\x00\x01 not a safetensors file")
    os.replace(torn, folder / WEIGHTS_FILE)
    with caplog.at_level(logging.ERROR, logger="mochi_model.adapter_refresh"):
        assert holder.check_adapters() == "failed"
        assert holder.check_adapters() == "failed-before"  # same files: not retried, said once
    assert engine.adapter_stack is stack
    np.testing.assert_array_equal(engine.backend.logits_for(ids), before)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "adapters not updated" in errors[0] and "still serving project proj" in errors[0]
    assert told == [("error", errors[0])] and holder.status()["adapter_refresh"]["error"] == errors[0]

    # weights for another model: refused before the swap, the old stack still serves
    _rewrite(shapes, folder, tmp_path, seed=3, base=BaseModelRef(id="someone/other-model", arch={"hidden_size": 7}))
    assert holder.check_adapters() == "failed" and engine.adapter_stack is stack
    np.testing.assert_array_equal(engine.backend.logits_for(ids), before)
    assert "other-model" in holder.status()["adapter_refresh"]["error"]

    _rewrite(shapes, folder, tmp_path, seed=4)  # fixed: the next check swaps it in
    assert holder.check_adapters() == "updated" and engine.adapter_stack is not stack
    assert holder.status()["adapter_refresh"]["error"] == "" and told[-1][0] == "info"


def test_request_paths_check_at_most_once_per_interval_and_never_wait_for_the_swap(shapes, tiny_model_dir, tmp_path):
    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    config = _config(tiny_model_dir)
    holder = _holder(config, AdapterChoice(config, tmp_path, specs=((folder, 1.0),)))
    engine = holder.get()
    stack = engine.adapter_stack
    assert holder.refresh_adapters() is None  # just loaded: the next check is an interval away
    _rewrite(shapes, folder, tmp_path, seed=2)
    holder.set_adapter_check(1e-9)
    with holder.generation_lock:  # an MCP tool call is running: the swap waits for it, nothing else does
        thread = holder.refresh_adapters()
        assert thread is not None
        assert holder.refresh_adapters() is None  # a check is running: no second one, no wait
        assert engine.complete_fim(PROMPT, max_tokens=2).finish_reason != "cancelled"  # requests go on
        assert engine.adapter_stack is stack
    thread.join(30)
    assert not thread.is_alive() and engine.adapter_stack is not stack
    holder.set_adapter_check(0)  # 0 = never
    assert holder.refresh_adapters() is None


def test_a_newer_installed_version_is_picked_up_by_auto_detection(shapes, tiny_model_dir, tmp_path):
    from mochi_model.dist.identity import ProjectIdentity
    from mochi_model.dist.install import install_local
    from mochi_model.dist.pack import pack

    root = tmp_path / "shop"
    root.mkdir()

    def install(version: str, seed: int) -> None:
        src = random_adapter(shapes, tmp_path / f"src-{version}", seed=seed).path
        install_local(pack(src, name="shop", version=version, out_dir=tmp_path / "archives",
                           identity=ProjectIdentity(name="shop", git_remote="")))

    install("1.0", seed=1)
    config = _config(tiny_model_dir)
    holder = _holder(config, AdapterChoice(config, root))
    engine = holder.get()
    model, ids = engine.backend.model, engine.backend.encode(PROMPT)
    before = engine.backend.logits_for(ids)
    assert holder.status()["adapters"] == ["shop@1.0:1"]
    assert holder.check_adapters() == "unchanged"

    install("1.1", seed=2)
    assert holder.check_adapters() == "updated"
    assert engine.backend.model is model and holder.status()["adapters"] == ["shop@1.1:1"]
    assert "shop@1.1" in holder.status()["adapter_refresh"]["serving"]
    assert not np.allclose(engine.backend.logits_for(ids), before, atol=1e-3)

    shutil.rmtree(Path(engine.adapter_stack.adapters[0].path))  # 1.1 uninstalled: 1.0 is the newest again
    assert holder.check_adapters() == "updated" and holder.status()["adapters"] == ["shop@1.0:1"]
    np.testing.assert_allclose(engine.backend.logits_for(ids), before, atol=1e-5)


def test_a_stack_the_backend_fails_to_install_midway_is_rolled_back(shapes, tiny_model_dir, tmp_path, monkeypatch):
    import mochi_model.backends.torch_backend as torch_backend

    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    config = _config(tiny_model_dir)
    holder = _holder(config, AdapterChoice(config, tmp_path, specs=((folder, 1.0),)))
    engine = holder.get()
    stack, ids = engine.adapter_stack, engine.backend.encode(PROMPT)
    before = engine.backend.logits_for(ids)
    real_wrap, calls = torch_backend.wrap_module, []

    def wrap_once_then_fail(model, path):  # noqa: ANN001
        calls.append(path)
        if len(calls) == 2:  # the old layers are already unwrapped and one new one is in
            raise RuntimeError("out of memory")
        return real_wrap(model, path)

    monkeypatch.setattr(torch_backend, "wrap_module", wrap_once_then_fail)
    _rewrite(shapes, folder, tmp_path, seed=2)
    assert holder.check_adapters() == "failed" and "out of memory" in holder.status()["adapter_refresh"]["error"]
    assert engine.adapter_stack is stack
    np.testing.assert_allclose(engine.backend.logits_for(ids), before, atol=1e-6)
