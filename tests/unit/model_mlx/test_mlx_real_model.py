"""The real Qwen2.5-Coder-0.5B on the MLX backend completes a function body that works."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.mlx, pytest.mark.real_model, pytest.mark.slow]
pytest.importorskip("mlx_lm")


def test_the_real_model_on_mlx_fills_in_a_working_function_body(real_model_path: Path):
    from mochi_model.engine import InferenceEngine

    # float32: mlx[cpu] on x86 runs bf16 far slower; a GGUF is read from its converted HF folder
    engine = InferenceEngine(model=str(real_model_path), backend_name="mlx", dtype="float32")
    assert engine.backend.name == "mlx" and engine.fim is not None and engine.fim.name == "qwen"
    prefix = 'def is_even(n: int) -> bool:\n    """True when n is even."""\n    return '
    comp = engine.complete_fim(prefix, "\n", max_tokens=12)
    assert comp.finish_reason in ("eos", "stop") and comp.text.strip()
    scope: dict[str, object] = {}
    exec(prefix + comp.text + "\n", scope)  # noqa: S102 - the check is that the completed code works
    is_even = scope["is_even"]
    assert callable(is_even)
    assert [is_even(n) for n in (0, 3, 4, 7, 10)] == [True, False, True, False, True]
