"""The real Qwen2.5-Coder-0.5B Q4_K_M on llama.cpp against torch on the same (de-quantized) weights."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
FIXTURES = Path(__file__).parents[2] / "fixtures"
NEW_TOKENS = 16


def fim_prompts(n: int = 10) -> list[str]:
    """FIM prompts cut from the fixture projects' files at fixed line ends (the same set every run)."""
    out: list[str] = []
    files = sorted(p for p in FIXTURES.rglob("*.py") if p.stat().st_size > 300)
    for f in files:
        lines = f.read_text(encoding="utf-8").split("\n")
        for frac in (0.4, 0.7):
            i = max(1, int(len(lines) * frac))
            # ~300-token windows: torch bf16 on a loaded 2-core CPU is the slow side of this test
            prefix, suffix = "\n".join(lines[max(0, i - 30):i]) + "\n", "\n" + "\n".join(lines[i + 1:i + 6])
            out.append(f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>")
    return out[:n]


@pytest.fixture(scope="module")
def llama_real(real_model_path: Path):
    from mochi_model.backends.llama_cpp_backend import load_backend
    from mochi_model.sources import resolve_model

    t0 = time.perf_counter()
    backend = load_backend(resolve_model(str(real_model_path)))
    backend.load_s = time.perf_counter() - t0
    yield backend
    backend.close()


@pytest.mark.timeout(900)
def test_greedy_tokens_agree_with_torch_on_the_same_weights_on_at_least_95_percent_of_positions(llama_real, real_model_path: Path):
    from mochi_model.backends.base import GenerationRequest
    from mochi_model.backends.torch_backend import load_backend
    from mochi_model.generation import Generator
    from mochi_model.sources import resolve_model

    # torch's own pick for this CPU: bf16 with AVX-512/AMX, else fp32 (bf16 is emulated, and very slow, on AVX2)
    ref = load_backend(resolve_model(str(real_model_path)))
    gen = Generator(ref)
    gen.lookahead = 0
    same = total = same_tok = 0
    prompts = fim_prompts()
    assert len(prompts) == 10
    for text in prompts:
        ids = ref.encode(text)
        same_tok += int(llama_real.encode(text) == ids)
        want = gen.generate(ids, GenerationRequest(max_tokens=NEW_TOKENS, stop_ids=[-1], reuse_cache=False)).token_ids
        rows = llama_real.logits_for(ids + want[:-1])[len(ids) - 1:]
        got = [int(t) for t in np.argmax(rows, axis=1)]
        same += sum(int(a == b) for a, b in zip(got, want, strict=True))
        total += len(want)
    ref_dtype = str(ref.model.dtype).replace("torch.", "")
    ref.close()
    share = same / total
    print(f"\nllama.cpp Q4_K_M vs torch {ref_dtype}: {100 * share:.1f} % of {total} greedy tokens agree (teacher-forced); "
          f"same tokenization on {same_tok}/{len(prompts)} prompts; load {llama_real.load_s:.2f} s")
    assert same_tok == len(prompts)
    assert share >= 0.95


def test_the_real_model_on_llama_fills_in_a_working_function_body(llama_real):
    from mochi_model.engine import InferenceEngine

    engine = InferenceEngine(backend=llama_real)
    assert engine.fim is not None and engine.fim.name == "qwen"
    prefix = 'def is_even(n: int) -> bool:\n    """True when n is even."""\n    return '
    comp = engine.complete_fim(prefix, "\n", max_tokens=12)
    assert comp.finish_reason in ("eos", "stop") and comp.text.strip()
    scope: dict[str, object] = {}
    exec(prefix + comp.text + "\n", scope)  # noqa: S102 - the check is that the completed code works
    is_even = scope["is_even"]
    assert [is_even(n) for n in (0, 3, 4, 7, 10)] == [True, False, True, False, True]
