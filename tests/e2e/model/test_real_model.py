"""The real Qwen2.5-Coder-0.5B completes simple function bodies in FIM mode (GGUF converted once, cached)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine(real_model_path):
    from mochi_model.backends.torch_backend import load_backend
    from mochi_model.engine import InferenceEngine
    from mochi_model.sources import resolve_model

    source = resolve_model(str(real_model_path))
    assert source.model_id == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    return InferenceEngine(backend=load_backend(source))


def test_real_model_completes_a_function_body_in_fim_mode(engine):
    prefix = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    "
    suffix = "\n\n\nprint(add(2, 3))\n"
    out = engine.complete_fim(prefix, suffix, max_tokens=16)
    assert out.extra["fim_format"] == "qwen" and out.extra["multiline"] is True
    assert out.text.strip() in ("return a + b", "return a+b")
    # The same request again is served from the KV cache: one prompt token prefilled, same answer.
    again = engine.complete_fim(prefix, suffix, max_tokens=16)
    assert again.text == out.text and again.cached_tokens == again.prompt_tokens - 1


def test_real_model_finishes_a_line_without_repeating_the_suffix(engine):
    prefix = "import os\n\n\ndef python_files(folder):\n    return [f for f in os.listdir(folder) if f."
    out = engine.complete_fim(prefix, "]\n", max_tokens=12)
    assert out.extra["multiline"] is False
    assert out.text.startswith("endswith(") and not out.text.endswith("]")
