"""Torch LoRA training on the tiny model: loss masking, learning, saved format, stacking, resume."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from mochi_model.training.dataset import read_jsonl, tokenize  # noqa: E402
from tests.unit.train.conftest import train_cfg  # noqa: E402


def test_loss_covers_only_the_completion_tokens(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mochi_model.training.torch_trainer import _completion_loss_module

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    sample = {"prompt": "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>", "completion": "return a + b<|endoftext|>"}
    (ex,), skipped = tokenize([sample], tok, 512)
    assert skipped == 0
    assert tok.decode(ex.ids[ex.start:]) == sample["completion"]
    ids = torch.tensor([ex.ids])
    labels = ids.clone()
    labels[:, :ex.start] = -100  # the reference: HF's own loss with the prompt masked out
    want = model(input_ids=ids, labels=labels).loss
    got = _completion_loss_module(model)(ids, ex.start)
    assert torch.allclose(got, want, atol=1e-5)
    other_prompt = dict(sample, prompt=sample["prompt"].replace("add", "mul"))
    (ex2,), _ = tokenize([other_prompt], tok, 512)
    assert not torch.allclose(_completion_loss_module(model)(torch.tensor([ex2.ids]), ex2.start), got)


def test_samples_longer_than_the_limit_are_skipped_and_counted(tiny_model_dir, tiny_data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = read_jsonl(tiny_data / "train.jsonl")
    kept, skipped = tokenize(rows, tok, 64)
    assert skipped > 0 and all(len(e.ids) <= 64 for e in kept)


def test_training_lowers_validation_loss_and_writes_the_canonical_adapter(tiny_adapter):
    out, result = tiny_adapter
    assert result.best_val_loss < result.first_val_loss - 0.1
    assert result.steps == 24 and result.tokens > 0 and result.tokens_per_s > 0
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["fine_tune_type"] == "lora" and cfg["lora_parameters"]["rank"] == 8
    assert cfg["lora_parameters"]["scale"] == 2.0 and cfg["num_layers"] == 2
    report = json.loads((out / "training.json").read_text())
    assert report["best_step"] == result.best_step and report["history"][0]["val_loss"] == result.first_val_loss
    assert (out / "loss.png").stat().st_size > 1000
    assert not (out / "checkpoint").exists()


def test_saved_adapter_loads_in_an_adapter_stack_and_changes_the_engine_output(tiny_adapter, tiny_model_dir):
    from mochi_core.config import MochiConfig
    from mochi_model.adapters.stack import AdapterStack, load_adapter
    from mochi_model.loader import load_engine

    out, _ = tiny_adapter
    adapter = load_adapter(out)
    stack = AdapterStack([(adapter, 1.0)])
    assert stack.weights == {adapter.name: 1.0}
    engine = load_engine(MochiConfig(), out.parent, adapters=[(out, 1.0)], model=str(tiny_model_dir), backend="torch")
    ids = engine.backend.encode("def total_cents(self) -> int:\n    return")
    with_adapter = engine.backend.logits_for(ids)
    engine.set_adapter_weights([0.0])
    without = engine.backend.logits_for(ids)
    assert abs(with_adapter - without).max() > 1e-3
    engine.close()


@pytest.mark.mlx
def test_adapter_trained_on_torch_gives_the_same_logits_on_mlx(tiny_adapter, tiny_model_dir):
    pytest.importorskip("mlx_lm")
    from mochi_core.config import MochiConfig
    from mochi_model.loader import load_engine

    out, _ = tiny_adapter
    t = load_engine(MochiConfig(), out.parent, adapters=[(out, 1.0)], model=str(tiny_model_dir), backend="torch")
    m = load_engine(MochiConfig(), out.parent, adapters=[(out, 1.0)], model=str(tiny_model_dir), backend="mlx")
    ids = t.backend.encode("def add(a, b):\n    return a + b")
    lt, lm = t.backend.logits_for(ids), m.backend.logits_for(ids)
    assert abs(lt - lm).max() < 1e-2 * max(1.0, abs(lt).max())
    t.close()
    m.close()


def test_interrupted_training_resumes_from_the_saved_step(tiny_model_dir, tiny_data, tmp_path):
    from mochi_model.training.torch_trainer import train_lora

    out = tmp_path / "adapter"
    seen: list[int] = []

    def stop_at_5(step, loss):
        seen.append(step)
        if step == 5:
            raise KeyboardInterrupt

    first = train_lora(tiny_model_dir, tiny_data, out, train_cfg(max_steps=8, eval_every=4), progress=False, on_step=stop_at_5)
    assert first.stopped == "interrupted" and first.steps == 5
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5
    resumed: list[int] = []
    second = train_lora(tiny_model_dir, tiny_data, out, train_cfg(max_steps=8, eval_every=4), progress=False,
                        on_step=lambda s, _loss: resumed.append(s))
    assert resumed == [6, 7, 8] and second.steps == 8 and second.stopped == "done"
    assert [h["step"] for h in second.history if "loss" in h] == list(range(1, 9))


def test_training_on_top_of_a_frozen_base_adapter_keeps_the_base_out_of_the_saved_weights(
        tiny_adapter, tiny_model_dir, tiny_data, tmp_path):
    from mochi_model.adapters.format import read_adapter
    from mochi_model.training.torch_trainer import train_lora

    base_dir, _ = tiny_adapter
    out = tmp_path / "project"
    res = train_lora(tiny_model_dir, tiny_data, out, train_cfg(max_steps=4, eval_every=4, base_adapter=str(base_dir),
                                                               base_weight=0.5), progress=False)
    base, proj = read_adapter(base_dir), read_adapter(out)
    assert proj.config.role == "project" and set(proj.modules) == set(base.modules)
    # starting on top of the base, the first validation loss is already below the bare model's
    assert res.first_val_loss < json.loads((base_dir / "training.json").read_text())["first_val_loss"]
