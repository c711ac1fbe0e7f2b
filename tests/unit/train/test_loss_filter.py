"""The Refact-style loss filter: the base model's per-file loss decides what is too easy or too noisy."""

from __future__ import annotations

import json

import numpy as np
import torch

from mochi_model.data.loss_score import loss_scorer, mean_token_loss
from mochi_model.data.prepare import PrepareOptions, collect_files, prepare
from tests.unit.model.helpers import tiny_backend
from tests.unit.train.conftest import FIXTURE


def test_the_score_is_the_mean_next_token_cross_entropy(tiny_model_dir):
    backend = tiny_backend(tiny_model_dir)
    text = "def add(a, b):\n    return a + b\n"
    ids = backend.encode(text)
    with torch.no_grad():
        logits = backend.model(torch.tensor([ids])).logits[0, :-1].float()
    want = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).item()
    assert abs(mean_token_loss(backend, text) - want) < 1e-4
    long_ids = backend.encode(text * 50)[:64]
    with torch.no_grad():
        head = backend.model(torch.tensor([long_ids])).logits[0, :-1].float()
    capped = torch.nn.functional.cross_entropy(head, torch.tensor(long_ids[1:])).item()
    assert abs(mean_token_loss(backend, text * 50, max_tokens=64) - capped) < 1e-4  # only the first 64 tokens
    assert np.isnan(mean_token_loss(backend, ""))  # nothing to score: never dropped


def test_files_outside_the_loss_band_are_dropped_and_reported(tiny_model_dir, tmp_path):
    backend = tiny_backend(tiny_model_dir)
    score = loss_scorer(backend, max_tokens=128)
    files = collect_files(FIXTURE)
    losses = sorted((score(t), p) for p, t in files.items() if p.endswith(".py"))
    low = (losses[0][0] + losses[1][0]) / 2  # exactly the easiest file is below
    high = (losses[-1][0] + losses[-2][0]) / 2  # exactly the hardest file is above
    summary = prepare(files, tmp_path / "data", options=PrepareOptions(loss_score=score, loss_low=low, loss_high=high),
                      repo_name="minirepo")
    dropped = json.loads((tmp_path / "data" / "dataset.json").read_text())["dropped"]
    assert dropped[losses[0][1]] == "too_predictable"
    assert dropped[losses[-1][1]] == "too_noisy"
    assert summary["dropped_counts"]["too_noisy"] == summary["dropped_counts"]["too_predictable"] == 1
