"""The llama.cpp backend on the tiny Qwen2 (f32 GGUF) against the fp32 torch reference.

Same weights on both sides, so logits agree to float rounding and greedy tokens are equal; the
adapter stack is llama.cpp's per-context LoRA list with one scale per adapter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mochi_model.adapters.format import BaseModelRef
from mochi_model.adapters.stack import AdapterStack
from mochi_model.backends.base import GenerationRequest
from mochi_model.errors import AdapterMismatch, ModelError, ModelNotFound
from mochi_model.generation import Generator
from mochi_model.types import CancelToken
from tests.unit.model.helpers import random_adapter

CODE = "def load(self):\n    with open(self.path) as f:\n        for line in f:\n"
ATOL = 1e-4


@pytest.fixture(scope="module")
def adapters(torch_tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("llama_adapters")
    team = random_adapter(torch_tiny, root / "team", seed=1, rank=4, scale=2.0, name="team", role="base",
                          keys=("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"))
    proj = random_adapter(torch_tiny, root / "proj", seed=2, rank=2, scale=1.5, name="proj",
                          keys=("self_attn.k_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.gate_proj"))
    return team, proj


def _ids(torch_tiny) -> list[int]:
    return torch_tiny.encode(CODE)


def test_the_gguf_vocabulary_tokenizes_code_and_fim_tokens_like_the_hf_tokenizer(llama, torch_tiny):
    # The tiny tokenizer splits with GPT-2's ByteLevel regex, whose `\s+(?!\S)|\s+` llama.cpp's "gpt-2"
    # pre-tokenizer does not reproduce for a newline before indentation ("\n   " is one token there);
    # the real Qwen2 tokenizer is compared on indented code in test_llama_real_model.py.
    for text in ("x  = 1", "<|fim_prefix|>x = 1\n<|fim_suffix|>\n<|fim_middle|>", "  return `hi`;", "a\n\nb"):
        assert llama.encode(text) == torch_tiny.encode(text)
    for text in (CODE, "greet(name: string) {\n  return `hi`;\n}\n", "naïve → ✓"):
        assert llama.decode(llama.encode(text)) == text
    assert llama.token_id("<|fim_middle|>") == torch_tiny.token_id("<|fim_middle|>")
    assert llama.eos_ids == torch_tiny.eos_ids
    assert set(llama.tokenizer.get_vocab()) == set(torch_tiny.tokenizer.get_vocab())


def test_logits_of_the_f32_gguf_equal_the_fp32_torch_model(llama, torch_tiny):
    ids = _ids(torch_tiny)
    got, want = llama.logits_for(ids), torch_tiny.logits_for(ids)
    assert got.shape == want.shape == (len(ids), len(torch_tiny.tokenizer))
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_the_adapter_stack_gives_the_torch_stack_logits_and_new_weights_need_no_reload(llama, torch_tiny, adapters):
    team, proj = adapters
    ids = _ids(torch_tiny)
    llama.set_adapter_stack(AdapterStack([(team, 0.3), (proj, 0.7)]))
    torch_tiny.set_adapter_stack(AdapterStack([(team, 0.3), (proj, 0.7)]))
    try:
        np.testing.assert_allclose(llama.logits_for(ids), torch_tiny.logits_for(ids), atol=ATOL, rtol=0)
        base_free = llama.logits_for(ids)
        loaded = dict(llama._loras)
        llama.adapter_stack.set_weights({"team": 1.0, "proj": -0.5})
        llama.update_adapter_weights()
        torch_tiny.adapter_stack.set_weights({"team": 1.0, "proj": -0.5})
        torch_tiny.update_adapter_weights()
        changed = llama.logits_for(ids)
        np.testing.assert_allclose(changed, torch_tiny.logits_for(ids), atol=ATOL, rtol=0)
        assert np.abs(changed - base_free).max() > 0.05  # the weights did change the function
        assert llama._loras == loaded  # same llama.cpp adapter handles: nothing was reloaded
    finally:
        torch_tiny.set_adapter_stack(None)


def test_weight_zero_gives_exactly_the_base_model(llama, torch_tiny, adapters):
    ids = _ids(torch_tiny)
    base = llama.logits_for(ids)
    llama.set_adapter_stack(AdapterStack([(adapters[0], 0.0), (adapters[1], 0.0)]))
    np.testing.assert_array_equal(llama.logits_for(ids), base)


def test_greedy_generation_with_the_stack_equals_the_torch_reference(llama, torch_tiny, adapters):
    ids = _ids(torch_tiny)
    req = GenerationRequest(max_tokens=24)
    llama.set_adapter_stack(AdapterStack([(adapters[0], 0.5), (adapters[1], 1.0)]))
    torch_tiny.set_adapter_stack(AdapterStack([(adapters[0], 0.5), (adapters[1], 1.0)]))
    try:
        got = Generator(llama).generate(ids, req)
        want = Generator(torch_tiny).generate(ids, req)
    finally:
        torch_tiny.set_adapter_stack(None)
    assert got.token_ids == want.token_ids and len(got.token_ids) > 0


def test_an_adapter_for_another_base_model_is_refused(llama, torch_tiny, tmp_path):
    other = random_adapter(torch_tiny, tmp_path / "other", seed=3, name="other",
                           base=BaseModelRef(id="Qwen/Qwen2.5-Coder-7B", arch={"hidden_size": 3584}))
    with pytest.raises(AdapterMismatch, match="Qwen2.5-Coder-7B"):
        llama.set_adapter_stack(AdapterStack([other]))


def test_kv_reuse_trim_and_chunked_prefill_give_the_tokens_of_a_fresh_run(llama, torch_tiny):
    ids = _ids(torch_tiny)
    fresh = Generator(llama).generate(ids, GenerationRequest(max_tokens=16, reuse_cache=False))
    gen = Generator(llama)
    gen.prefill_chunk = 5
    assert gen.generate(ids, GenerationRequest(max_tokens=16)).token_ids == fresh.token_ids
    # a different tail: the shared prefix comes from the cache, the rest is trimmed and re-fed
    other = ids[:-3] + torch_tiny.encode(" x")
    again = gen.generate(other, GenerationRequest(max_tokens=16))
    assert again.cached_tokens >= len(ids) - 4
    assert again.token_ids == Generator(llama).generate(other, GenerationRequest(max_tokens=16)).token_ids
    back = gen.generate(ids, GenerationRequest(max_tokens=16))
    assert back.cached_tokens >= len(ids) - 4 and back.token_ids == fresh.token_ids


def test_prompt_lookup_drafts_verified_with_forward_many_keep_the_greedy_tokens(llama, torch_tiny):
    ids = torch_tiny.encode(CODE * 3)
    plain = Generator(llama)
    plain.lookahead = 0
    want = plain.generate(ids, GenerationRequest(max_tokens=20, reuse_cache=False))
    got = Generator(llama).generate(ids, GenerationRequest(max_tokens=20, reuse_cache=False))
    assert got.drafted_tokens > 0
    assert got.token_ids == want.token_ids


def test_forward_many_rows_equal_one_step_at_a_time(llama, torch_tiny):
    ids = _ids(torch_tiny)
    cache = llama.new_cache()
    llama.prefill(ids[:-4], cache)
    rows = llama.forward_many(ids[-4:], cache)
    assert llama.cache_len(cache) == len(ids)
    llama.trim_cache(cache, len(ids) - 4)
    steps = np.stack([llama.step(t, cache) for t in ids[-4:]])
    np.testing.assert_allclose(rows, steps, atol=ATOL, rtol=0)
    cache.release()


def test_logits_for_does_not_disturb_the_decoding_cache(llama, torch_tiny):
    ids = _ids(torch_tiny)
    gen = Generator(llama)
    first = gen.generate(ids, GenerationRequest(max_tokens=8))
    llama.logits_for(torch_tiny.encode("something else entirely"))
    again = gen.generate(ids, GenerationRequest(max_tokens=8))
    assert again.cached_tokens == len(ids) - 1 and again.token_ids == first.token_ids


def test_a_cancelled_request_stops_and_the_next_one_reuses_what_was_prefilled(llama, torch_tiny):
    ids = torch_tiny.encode(CODE * 4)
    cancel = CancelToken()
    gen = Generator(llama)
    gen.prefill_chunk = 8
    seen: list[str] = []

    def on_token(text: str) -> None:
        seen.append(text)
        cancel.cancel()

    out = gen.generate(ids, GenerationRequest(max_tokens=30, cancel=cancel, on_token=on_token))
    assert out.finish_reason == "cancelled" and len(out.token_ids) <= 2
    nxt = gen.generate(ids, GenerationRequest(max_tokens=4))
    assert nxt.cached_tokens == len(ids) - 1


def test_a_grown_prompt_lives_in_its_own_kv_sequence_until_it_is_complete(llama, torch_tiny):
    small, big = _ids(torch_tiny), torch_tiny.encode("import os\n" * 6 + CODE)
    gen = Generator(llama)
    gen.warm_chunk = gen.grow_min_chunk = 4
    first = gen.generate(small, GenerationRequest(max_tokens=6))
    # cut short after two passes: the second sequence is dropped, the request's cache stays whole
    calls: list[int] = []
    assert gen.grow(big, stop=lambda: len(calls.append(1) or calls) > 2).state == "preempted"
    kept = gen.generate(small, GenerationRequest(max_tokens=6))
    assert kept.cached_tokens == len(small) - 1 and kept.token_ids == first.token_ids
    # complete: swapped in, and the old sequence is given back (growing again and again never runs
    # out of the context's few sequence ids)
    for _ in range(6):
        assert gen.grow(big).state == "done" and gen.grow(small).state == "done"
    out = gen.generate(small, GenerationRequest(max_tokens=6))
    assert out.cached_tokens == len(small) - 1 and out.token_ids == first.token_ids
    fresh = Generator(llama).generate(big, GenerationRequest(max_tokens=6, reuse_cache=False))
    assert gen.grow(big).state == "done"
    assert gen.generate(big, GenerationRequest(max_tokens=6)).token_ids == fresh.token_ids


def test_a_prompt_longer_than_the_context_is_a_clear_error(llama):
    with pytest.raises(ModelError, match="exceeds the llama context"):
        llama.logits_for([5] * (llama.n_ctx + 1))
    assert len(llama._free_seqs) == 4  # the sequence went back to the pool


def test_a_folder_model_is_refused_with_a_pointer_to_torch(tiny_model_dir):
    from mochi_model.backends.llama_cpp_backend import load_backend
    from mochi_model.sources import resolve_model

    with pytest.raises(ModelNotFound, match="loads .gguf files"):
        load_backend(resolve_model(str(tiny_model_dir)))


def test_auto_picks_llama_for_a_gguf_and_torch_for_an_hf_folder(tiny_gguf, tiny_model_dir):
    from mochi_model.backends import llama_preferred, resolve_backend_and_model
    from mochi_model.sources import resolve_model

    assert llama_preferred()
    name, src = resolve_backend_and_model("auto", lambda b: resolve_model(str(tiny_gguf), backend=b))
    assert name == "llama" and src.is_gguf
    name, src = resolve_backend_and_model("auto", lambda b: resolve_model(str(tiny_model_dir), backend=b))
    assert name == "torch" and not src.is_gguf
    assert resolve_backend_and_model("torch", lambda b: resolve_model(str(tiny_gguf), backend=b))[0] == "torch"


def test_the_engine_completes_fim_on_llama_through_load_engine(tiny_gguf, tmp_path: Path):
    from mochi_core.config import MochiConfig
    from mochi_model.loader import load_engine

    engine = load_engine(MochiConfig(), tmp_path, adapters=[], model=str(tiny_gguf))
    try:
        assert engine.backend.name == "llama" and engine.fim is not None and engine.fim.name == "qwen"
        comp = engine.complete_fim("def add(a, b):\n    return ", "\n", max_tokens=6)
        assert comp.finish_reason in ("eos", "stop", "length") and comp.prompt_tokens > 0
        again = engine.complete_fim("def add(a, b):\n    return ", "\n", max_tokens=6)
        assert again.text == comp.text and again.cached_tokens > 0
    finally:
        engine.close()
    with pytest.raises(ModelError, match="closed"):
        engine.backend.logits_for([1, 2])


def test_the_thread_governor_drops_to_one_thread_while_other_processes_keep_a_core_busy(monkeypatch):
    from mochi_model.backends.llama_cpp_backend import ThreadGovernor

    gov = ThreadGovernor(2, interval=0.0)
    # (time s, busy CPU-seconds of the whole machine, CPU-seconds of this process)
    samples = iter([(0.0, 100.0, 10.0), (1.0, 102.0, 12.0),   # all the busy time was ours: 2 threads
                    (2.0, 103.9, 13.0),                        # others took 0.9 of a core: 1 thread
                    (3.0, 105.1, 14.9)])                       # others 0.0-0.1 again: back to 2
    monkeypatch.setattr(gov, "_sample", lambda: next(samples))
    assert [gov.update() for _ in range(4)] == [2, 2, 1, 2]
