"""The full engine on MLX behaves like the engine on torch: same completions, same stack semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.mlx
pytest.importorskip("mlx_lm")
pytest.importorskip("torch")

from mochi_model.adapters.stack import Adapter, AdapterStack  # noqa: E402
from mochi_model.engine import InferenceEngine  # noqa: E402

# A user typing a function body: each step extends the prefix (KV prefix reuse on both backends).
STEPS = ["def load(self):\n    with open(self.path) as f:\n        for line in f:\n            ",
         "def load(self):\n    with open(self.path) as f:\n        for line in f:\n            key",
         "def load(self):\n    with open(self.path) as f:\n        for line in f:\n            key, _"]
SUFFIX = "\n    return self.values\n"


@pytest.fixture(scope="module")
def engines(tiny_model_dir: Path, tiny_adapters: dict[str, Path]) -> tuple[InferenceEngine, InferenceEngine]:
    def stack() -> AdapterStack:
        return AdapterStack([(Adapter.load(tiny_adapters["team"]), 0.3),
                             (Adapter.load(tiny_adapters["project"]), 0.7)])

    kw = {"model": str(tiny_model_dir), "dtype": "float32", "device": "cpu"}
    return (InferenceEngine(stack(), backend_name="torch", **kw),
            InferenceEngine(stack(), backend_name="mlx", **kw))


def _run(engine: InferenceEngine, prefix: str, **kw: object) -> tuple[str, str, int]:
    c = engine.complete_fim(prefix, SUFFIX, max_tokens=8, multiline=True, **kw)  # type: ignore[arg-type]
    return str(c.extra["raw"]), c.finish_reason, c.cached_tokens


def test_typing_steps_complete_identically_on_torch_and_mlx_with_kv_reuse(engines):
    torch_engine, mlx_engine = engines
    assert mlx_engine.backend.name == "mlx" and torch_engine.backend.name == "torch"
    for step in STEPS:
        t_raw, t_reason, t_cached = _run(torch_engine, step)
        m_raw, m_reason, m_cached = _run(mlx_engine, step)
        assert (m_raw, m_reason) == (t_raw, t_reason) and m_raw
        assert m_cached == t_cached  # the same prefix is reused on both
    assert m_cached > 0


def test_kv_reuse_on_mlx_gives_exactly_the_tokens_of_a_fresh_run(engines):
    _, mlx_engine = engines
    warm = [_run(mlx_engine, step)[0] for step in STEPS]
    fresh = []
    for step in STEPS:
        mlx_engine.reset_cache()
        fresh.append(_run(mlx_engine, step)[0])
    assert warm == fresh


def test_per_request_weights_and_fused_mode_agree_across_backends(engines):
    torch_engine, mlx_engine = engines
    seen = set()
    for weights in ({"team": 1.0, "project": 0.0}, {"team": 0.0, "project": 0.0}, {"team": 0.3, "project": 0.7}):
        t = _run(torch_engine, STEPS[0], adapter_weights=weights)
        m = _run(mlx_engine, STEPS[0], adapter_weights=weights)
        assert m[:2] == t[:2]
        seen.add(m[0])
    assert len(seen) > 1  # the weights really change the completion
    stacked = _run(mlx_engine, STEPS[1])[0]
    mlx_engine.set_fused(True)
    try:
        assert mlx_engine.backend.fused
        assert _run(mlx_engine, STEPS[1])[0] == stacked
    finally:
        mlx_engine.set_fused(False)
