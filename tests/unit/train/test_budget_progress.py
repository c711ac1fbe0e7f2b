"""The wall-clock budget, progress lines without a terminal, and peak memory in training.json."""

from __future__ import annotations

import io
import json
import resource
import time

import pytest

from mochi_model.training.budget import REPORT_ALLOWANCE_S, TimeBudget
from mochi_model.training.progress import TrainProgress, format_eta
from tests.unit.train.conftest import train_cfg


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_stops_when_one_more_step_and_the_final_validation_would_pass_the_deadline():
    clock = Clock()
    budget = TimeBudget(10, started_at=clock.now - 60, clock=clock, eval_every=25)  # model load took a minute
    budget.record_eval(40.0)
    budget.record_save(1.0)
    for s in (10.0, 12.0, 11.0):
        budget.record_step(s)
    assert budget.step_s == 12.0  # the slowest recent step, so a burst of load makes it stop early
    assert budget.reserve_s() == 40.0 * 1.25 + 1.0 + REPORT_ALLOWANCE_S
    deadline = 1000.0 - 60 + 600
    clock.now = deadline - 12.0 - budget.reserve_s() - 0.5
    assert not budget.must_stop()
    clock.now += 1.0
    assert budget.must_stop()


def test_the_plan_shrinks_to_the_steps_that_fit_and_the_eta_is_the_deadline_when_that_comes_first():
    clock = Clock()
    budget = TimeBudget(30, started_at=clock.now, clock=clock, eval_every=10)
    assert budget.reachable_steps(0, 400) == 400  # nothing measured yet
    budget.record_eval(20.0)
    budget.record_step(18.0)
    left = 30 * 60 - budget.reserve_s()
    assert budget.reachable_steps(1, 400) == 1 + int(left / (18.0 + 2.0))
    assert budget.reachable_steps(1, 5) == 5  # a small data set ends before the budget
    assert budget.eta_s(1, 400) == 30 * 60
    assert budget.eta_s(1, 5) == pytest.approx(4 * 20.0 + 20.0 * 1.25)
    unlimited = TimeBudget(0, clock=clock)
    unlimited.record_step(5.0)
    assert not unlimited.limited and not unlimited.must_stop() and unlimited.reachable_steps(3, 50) == 50


def test_a_periodic_validation_close_to_the_planned_end_is_left_to_the_final_one():
    budget = TimeBudget(25, eval_every=25)
    assert [s for s in range(1, 30) if budget.validates_after(s, 29)] == [29]  # step 25's would be replaced 4 steps later
    assert [s for s in range(1, 71) if budget.validates_after(s, 70)] == [25, 50, 70]
    assert [s for s in range(1, 61) if budget.validates_after(s, 60)] == [25, 60]
    assert budget.validates_after(25, 38) and not budget.validates_after(25, 37)  # half an interval: 12.5 steps


def test_the_learning_rate_decays_to_zero_over_the_steps_the_budget_allows():
    from mochi_model.training.torch_trainer import _lr_lambda

    plan = {"total": 400}
    f = _lr_lambda(train_cfg(schedule="cosine", warmup_frac=0.05), plan)
    assert f(0) == pytest.approx(1 / 20) and f(100) > 0.8
    plan["total"] = 100  # the budget allows only 100 steps: the same step is now at the end of the decay
    assert f(100) == pytest.approx(0.0, abs=1e-9) and f(50) < 0.6


def test_progress_prints_plain_lines_when_stderr_is_not_a_terminal():
    stream, clock = io.StringIO(), Clock()
    bar = TrainProgress(10, stream=stream, every_s=30, clock=clock)
    assert bar.plain
    bar.start(0)
    for step in range(1, 11):
        clock.now += 10
        bar.update(step, 1.0 / step, 150.0, eta_s=(10 - step) * 10.0, total=10 if step < 6 else 8)
        if step == 8:
            break
    bar.note("step 8: val loss 0.9000 (best 0.9000)")
    bar.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "step 1/10  loss 1.0000  150 tok/s  ETA 1m30s"
    assert [ln.split()[1] for ln in lines if ln.startswith("step ") and "loss" in ln and "val" not in ln] == \
        ["1/10", "4/10", "7/8", "8/8"]  # first, every 30 s, and the last step of the (shrunk) plan
    assert lines[-1].startswith("step 8: val loss")


def test_progress_uses_a_bar_on_a_terminal_and_prints_nothing_when_disabled():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not TrainProgress(5, stream=Tty()).plain
    quiet = io.StringIO()
    bar = TrainProgress(5, enabled=False, stream=quiet)
    bar.start(0)
    bar.update(1, 1.0, 10.0, 5.0)
    bar.note("x")
    assert quiet.getvalue() == ""
    assert format_eta(3725) == "1h02m" and format_eta(59.6) == "1m00s" and format_eta(7) == "7s"


def test_training_reports_progress_lines_and_peak_memory_in_training_json(tiny_model_dir, tiny_data, tmp_path, capsys):
    from mochi_model.training.torch_trainer import train_lora

    out = tmp_path / "adapter"
    res = train_lora(tiny_model_dir, tiny_data, out, train_cfg(max_steps=7, eval_every=3), progress=True)
    err = capsys.readouterr().err
    assert "step 1/7  loss " in err and "step 7/7  loss " in err and "step 3: val loss" in err
    # step 6's validation is left to step 7's, the last one (only one step later)
    assert [h["step"] for h in res.history if "val_loss" in h] == [0, 3, 7]
    mem = json.loads((out / "training.json").read_text())["memory"]
    own_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 0 < mem["rss_after_load_mb"] <= mem["max_rss_between_steps_mb"] <= mem["peak_rss_mb"] <= own_peak_mb + 1
    assert mem["torch_cuda_peak_mb"] is None and res.memory == mem
    assert res.tokens_per_s > 0 and res.step_seconds <= res.seconds


def test_a_run_whose_budget_is_nearly_spent_stops_after_one_step_with_a_final_validation(
        tiny_model_dir, tiny_data, tmp_path):
    from mochi_model.training.torch_trainer import train_lora

    out = tmp_path / "adapter"
    started = time.monotonic() - 60 + REPORT_ALLOWANCE_S  # a 1-minute budget with only the report allowance left
    res = train_lora(tiny_model_dir, tiny_data, out, train_cfg(max_steps=24, max_minutes=1.0), progress=False,
                     started_at=started)
    assert res.stopped == "time" and res.steps == 1
    assert res.history[-1] == {"step": 1, "val_loss": res.history[-1]["val_loss"]}
    report = json.loads((out / "training.json").read_text())
    assert report["stopped"] == "time" and report["budget"]["max_minutes"] == 1.0
    assert (out / "adapters.safetensors").exists() and not (out / "checkpoint").exists()


def test_gradient_checkpointing_gives_the_same_losses(tiny_model_dir, tiny_data, tmp_path):
    from mochi_model.training.torch_trainer import train_lora

    runs = {}
    for ckpt in (False, True):
        seen: list[float] = []
        train_lora(tiny_model_dir, tiny_data, tmp_path / f"a{ckpt}", train_cfg(max_steps=3, eval_every=3,
                   grad_checkpointing=ckpt), progress=False, on_step=lambda _s, loss, seen=seen: seen.append(loss))
        runs[ckpt] = seen
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)


def test_an_update_keeps_later_weights_on_a_tie(tiny_model_dir, tiny_data, tmp_path):
    from mochi_model.training.torch_trainer import train_lora

    # lr 0: the weights never move, so every validation ties with step 0's
    tie = train_lora(tiny_model_dir, tiny_data, tmp_path / "a", train_cfg(max_steps=4, eval_every=2, lr=0.0),
                     progress=False)
    assert tie.best_step == 0  # the default keeps the first of equal losses
    later = train_lora(tiny_model_dir, tiny_data, tmp_path / "b",
                       train_cfg(max_steps=4, eval_every=2, lr=0.0, prefer_later_within=0.01), progress=False)
    assert later.best_step == 4 and later.best_val_loss == later.first_val_loss


def test_the_kept_weights_rule():
    from mochi_model.training.torch_trainer import replaces_best

    assert replaces_best(2.0, 2.1, 2.1) and not replaces_best(2.1, 2.1, 2.1)  # default: strictly lower only
    assert replaces_best(2.1649, 2.1613, 2.1613, 0.01)  # an update's 5 steps: inside 1 %, the new weights
    assert not replaces_best(2.20, 2.1613, 2.1613, 0.01)  # worse by 1.8 %: the old weights stay
    # the margin counts from the lowest loss seen, so ties cannot drift upwards step by step
    assert not replaces_best(2.18, 2.17, 2.15, 0.01)
