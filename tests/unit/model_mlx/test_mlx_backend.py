"""MLX backend parity with torch on the tiny model: logits, adapters both ways, stack = fused, KV trim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.unit.model_mlx.conftest import torch_logits, torch_model

pytestmark = pytest.mark.mlx
pytest.importorskip("mlx_lm")

from mochi_model.adapters.format import export_peft, read_adapter  # noqa: E402
from mochi_model.adapters.merge import merge_stack  # noqa: E402
from mochi_model.adapters.stack import Adapter, AdapterStack  # noqa: E402
from mochi_model.backends.base import GenerationRequest  # noqa: E402
from mochi_model.errors import AdapterMismatch, BackendUnavailable  # noqa: E402
from mochi_model.generation import Generator  # noqa: E402

CODE = "<|fim_prefix|>def add(a, b):\n    return<|fim_suffix|>\n\nclass Config:\n<|fim_middle|>"
ATOL = 2e-4  # float32 on both sides; observed differences are ~1e-6


@pytest.fixture
def ids(mlx_tiny) -> list[int]:
    return mlx_tiny.encode(CODE)


@pytest.fixture(autouse=True)
def _base_model(mlx_tiny):
    mlx_tiny.set_adapter_stack(None)
    yield
    mlx_tiny.set_adapter_stack(None)


def _base_logits(backend, ids):
    stack = backend.adapter_stack
    backend.set_adapter_stack(None)
    out = backend.logits_for(ids)
    backend.set_adapter_stack(stack)
    return out


def test_mlx_and_torch_give_the_same_logits_for_the_same_weights(mlx_tiny, tiny_model_dir, ids):
    want = torch_logits(torch_model(tiny_model_dir), ids)
    got = mlx_tiny.logits_for(ids)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_a_peft_adapter_from_torch_gives_the_same_logits_on_mlx(mlx_tiny, tiny_model_dir, tiny_adapters, tmp_path, ids):
    peft_dir = export_peft(read_adapter(tiny_adapters["team"]), tmp_path / "peft")
    want = torch_logits(torch_model(tiny_model_dir, peft_dir), ids)
    mlx_tiny.set_adapter_stack(AdapterStack([Adapter(read_adapter(peft_dir), name="team")]))  # PEFT import path
    got = mlx_tiny.logits_for(ids)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert np.abs(got - _base_logits(mlx_tiny, ids)).max() > 0.05  # the adapter really changes the model


def test_an_adapter_written_by_mlx_lm_training_code_gives_the_same_logits_on_torch(tiny_model_dir, tmp_path, ids):
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from mochi_model.backends.mlx_backend import _config_overrides

    model, _ = load(str(tiny_model_dir), model_config=_config_overrides(tiny_model_dir))
    params = {"rank": 3, "scale": 4.0, "dropout": 0.0, "keys": ["self_attn.k_proj", "mlp.up_proj"]}
    linear_to_lora_layers(model, 2, params)
    mx.random.seed(5)
    for _, layer in model.named_modules():
        if hasattr(layer, "lora_b"):
            layer.lora_b = mx.random.normal(layer.lora_b.shape) * 0.2  # trained-looking, non-zero B
    out = tmp_path / "mlx_trained"
    out.mkdir()
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    (out / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora", "num_layers": 2,
                                                         "lora_parameters": params}))
    want = np.array(model(mx.array([ids]))[0])  # mlx-lm's own LoRALinear
    peft_dir = export_peft(read_adapter(out), tmp_path / "as_peft")
    got = torch_logits(torch_model(tiny_model_dir, peft_dir), ids)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_a_weighted_stack_matches_its_merged_lora_on_torch_and_fused_mode_on_mlx(
        mlx_tiny, tiny_model_dir, tiny_adapters, tmp_path, ids):
    stack = AdapterStack([(Adapter.load(tiny_adapters["team"]), 0.3), (Adapter.load(tiny_adapters["project"]), 0.7)])
    base = mlx_tiny.logits_for(ids)
    mlx_tiny.set_adapter_stack(stack)
    stacked = mlx_tiny.logits_for(ids)
    assert np.abs(stacked - base).max() > 0.05
    peft_dir = export_peft(read_adapter(_write_merged(stack, tmp_path)), tmp_path / "merged_peft")
    np.testing.assert_allclose(stacked, torch_logits(torch_model(tiny_model_dir, peft_dir), ids), atol=ATOL, rtol=0)
    mlx_tiny.fuse()
    assert mlx_tiny.fused
    np.testing.assert_allclose(mlx_tiny.logits_for(ids), stacked, atol=ATOL, rtol=0)
    mlx_tiny.unfuse()
    np.testing.assert_array_equal(mlx_tiny.logits_for(ids), stacked)


def _write_merged(stack, tmp_path: Path) -> Path:
    from mochi_model.adapters.format import write_adapter

    return write_adapter(tmp_path / "merged", merge_stack(stack))


def test_weights_swap_per_request_and_weight_zero_is_exactly_the_base(mlx_tiny, tiny_adapters, ids):
    base = mlx_tiny.logits_for(ids)
    team, project = Adapter.load(tiny_adapters["team"]), Adapter.load(tiny_adapters["project"])
    stack = AdapterStack([(team, 1.0), (project, 0.0)])
    mlx_tiny.set_adapter_stack(stack)
    team_only = mlx_tiny.logits_for(ids)
    stack.set_weights({"team": 0.0, "project": 1.0})
    mlx_tiny.update_adapter_weights()
    project_only = mlx_tiny.logits_for(ids)
    stack.set_weights({"team": 0.0, "project": 0.0})
    mlx_tiny.update_adapter_weights()
    np.testing.assert_array_equal(mlx_tiny.logits_for(ids), base)
    mlx_tiny.set_adapter_stack(AdapterStack([project]))
    np.testing.assert_allclose(mlx_tiny.logits_for(ids), project_only, atol=1e-5, rtol=0)
    assert np.abs(team_only - project_only).max() > 0.05


def test_an_adapter_for_another_base_model_is_refused_and_the_model_is_unchanged(mlx_tiny, tiny_adapters, ids):
    base = mlx_tiny.logits_for(ids)
    with pytest.raises(AdapterMismatch, match="Qwen2.5-Coder-7B"):
        mlx_tiny.set_adapter_stack(AdapterStack([Adapter.load(tiny_adapters["other"])]))
    np.testing.assert_array_equal(mlx_tiny.logits_for(ids), base)


def test_trimming_the_kv_cache_then_prefilling_matches_a_fresh_prefill(mlx_tiny, ids):
    cache = mlx_tiny.new_cache()
    mlx_tiny.prefill(ids, cache)
    assert mlx_tiny.cache_len(cache) == len(ids)
    edited = ids[:9] + mlx_tiny.encode("    x = 1\n")
    mlx_tiny.trim_cache(cache, 9)
    assert mlx_tiny.cache_len(cache) == 9
    got = mlx_tiny.prefill(edited[9:], cache)
    np.testing.assert_allclose(got, mlx_tiny.logits_for(edited)[-1], atol=1e-5, rtol=0)


def test_greedy_tokens_are_identical_on_mlx_and_torch_with_an_adapter(mlx_tiny, tiny_model_dir, tiny_adapters, tmp_path, ids):
    import torch

    mlx_tiny.set_adapter_stack(AdapterStack([Adapter.load(tiny_adapters["project"])]))
    gen = Generator(mlx_tiny)
    first = gen.generate(ids, GenerationRequest(max_tokens=10))
    again = gen.generate(ids, GenerationRequest(max_tokens=10))  # served from the KV cache
    assert again.cached_tokens == len(ids) - 1 and again.token_ids == first.token_ids
    peft_dir = export_peft(read_adapter(tiny_adapters["project"]), tmp_path / "peft")
    model = torch_model(tiny_model_dir, peft_dir)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False,
                             eos_token_id=sorted(mlx_tiny.eos_ids), pad_token_id=sorted(mlx_tiny.eos_ids)[0])
    want = [t for t in out[0, len(ids):].tolist() if t not in mlx_tiny.eos_ids]
    assert first.token_ids == want and len(want) > 0


def test_a_missing_mlx_install_says_what_to_pip_install(monkeypatch, tiny_model_dir):
    from mochi_model.backends import load_backend, mlx_backend

    monkeypatch.setitem(sys.modules, "mlx_lm", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'mochi-code\[mlx\]'"):
        load_backend("mlx", tiny_model_dir)
    with pytest.raises(BackendUnavailable, match=r"pip install 'mochi-code\[mlx\]'"):
        mlx_backend.load_backend(tiny_model_dir)


def test_the_mlx_path_loads_and_generates_where_torch_is_not_installed(tiny_model_dir):
    script = (
        "import sys; sys.modules['torch'] = None\n"  # an Apple-Silicon install with only mochi-code[mlx]
        "from mochi_model.backends import load_backend\n"
        "from mochi_model.generation import Generator\n"
        "from mochi_model.backends.base import GenerationRequest\n"
        f"b = load_backend('mlx', {str(tiny_model_dir)!r})\n"
        "r = Generator(b).generate(b.encode('def add('), GenerationRequest(max_tokens=3))\n"
        "print(len(r.token_ids), sorted(m for m in sys.modules if m.startswith('torch')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 3 tokens decoded, and no torch module was imported (the blocked entry itself is all there is)
    assert proc.stdout.strip() == "3 ['torch']"


def test_every_forward_pass_runs_on_the_backends_own_mlx_thread_whoever_calls(mlx_tiny, ids):
    import threading

    seen: set[int] = set()
    inner = mlx_tiny.model

    class Recording:
        def __call__(self, *args, **kwargs):
            seen.add(threading.get_ident())
            return inner(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(inner, name)

    mlx_tiny.model = Recording()
    try:
        here = Generator(mlx_tiny).generate(ids, GenerationRequest(max_tokens=4))
        results = []
        worker = threading.Thread(target=lambda: results.append(
            Generator(mlx_tiny).generate(ids, GenerationRequest(max_tokens=4))))
        worker.start()
        worker.join(60)
    finally:
        mlx_tiny.model = inner
    assert results and results[0].token_ids == here.token_ids
    # mlx >= 0.31.2 streams are thread-local: one thread for all MLX work keeps arrays on its streams
    assert seen == {mlx_tiny.mlx_thread.ident} and threading.get_ident() not in seen


def test_forward_many_scores_every_position_and_prompt_lookup_keeps_the_greedy_tokens(mlx_tiny, ids):
    cache = mlx_tiny.new_cache()
    mlx_tiny.prefill(ids[:6], cache)
    rows = mlx_tiny.forward_many(ids[6:], cache)
    np.testing.assert_allclose(rows, mlx_tiny.logits_for(ids)[6:], atol=1e-5, rtol=0)
    loop = mlx_tiny.encode("import os\nimport os\nimport")
    plain = Generator(mlx_tiny)
    plain.lookahead = 0
    want = plain.generate(loop, GenerationRequest(max_tokens=20))
    got = Generator(mlx_tiny).generate(loop, GenerationRequest(max_tokens=20))
    assert got.token_ids == want.token_ids and got.accepted_tokens > 0


def test_a_closed_backend_refuses_work_with_a_clear_error(tiny_model_dir):
    from mochi_model.backends import load_backend
    from mochi_model.errors import ModelError

    backend = load_backend("mlx", tiny_model_dir, dtype="float32")
    backend.close()
    with pytest.raises(ModelError, match="closed"):
        backend.prefill([1, 2, 3], backend.new_cache())
