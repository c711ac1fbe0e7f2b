"""A prepared tiny data set and one tiny trained adapter, shared by the training tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[2] / "fixtures" / "train" / "minirepo"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mochi_core.config import CompletionSection
    from mochi_model.data.prepare import PrepareOptions, collect_files, prepare
    from mochi_model.data.samples import SampleOptions

    out = tmp_path_factory.mktemp("tiny_data")
    opts = PrepareOptions(budgets=CompletionSection(prefix_tokens=96, suffix_tokens=24, context_tokens=48),
                          samples=SampleOptions(next_line_per_100=40, fim_per_100=20, span_per_100=5, file_chunk_chars=400))
    prepare(collect_files(FIXTURE), out, options=opts, repo_name="minirepo")
    return out


def train_cfg(**kw):
    from mochi_model.training.config import TrainConfig

    base = dict(rank=8, alpha=16, lr=2e-3, batch_size=2, max_steps=24, min_steps=1, eval_every=8, eval_samples=8,
                max_seq_len=1024, dropout=0.0, patience=10)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model_dir: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from mochi_model.training.torch_trainer import train_lora

    out = tmp_path_factory.mktemp("tiny_adapter") / "adapter"
    result = train_lora(tiny_model_dir, tiny_data, out, train_cfg(), resume=False, progress=False)
    return out, result


@pytest.fixture
def fresh_copy(tmp_path: Path):
    def copy(src: Path) -> Path:
        dest = tmp_path / src.name
        shutil.copytree(src, dest)
        return dest

    return copy
