"""On llama.cpp, an adapter rewritten in place gets its own GGUF LoRA and the old one is freed."""

from __future__ import annotations

import os

import numpy as np

from mochi_core.config import MochiConfig
from mochi_model.adapter_refresh import AdapterChoice, AdapterRefresher
from mochi_model.adapters.format import WEIGHTS_FILE
from mochi_model.adapters.stack import AdapterStack, load_adapter
from mochi_model.engine import InferenceEngine
from tests.unit.model.helpers import random_adapter

CODE = "def load(self):\n    with open(self.path) as f:\n"


def test_a_rewritten_adapter_is_converted_again_swapped_in_and_the_old_lora_freed(llama, torch_tiny, tmp_path):
    folder = tmp_path / "proj"
    random_adapter(torch_tiny, folder, seed=1, name="proj")
    refresher = AdapterRefresher(AdapterChoice(MochiConfig(), tmp_path, specs=((folder, 1.0),)), interval_s=0)
    refresher.mark()
    engine = InferenceEngine(AdapterStack([(load_adapter(folder), 1.0)]), backend=llama)
    ids = torch_tiny.encode(CODE)
    before = llama.logits_for(ids)

    stage = tmp_path / "stage"
    random_adapter(torch_tiny, stage, seed=2, name="proj")
    os.replace(stage / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    assert refresher.check(engine) == "updated"
    after = llama.logits_for(ids)
    torch_tiny.set_adapter_stack(AdapterStack([(load_adapter(folder), 1.0)]))
    try:
        np.testing.assert_allclose(after, torch_tiny.logits_for(ids), atol=1e-4)
    finally:
        torch_tiny.set_adapter_stack(None)
    assert not np.allclose(before, after, atol=1e-3)
    assert len(llama._loras) == 1  # the first version's LoRA is no longer held
