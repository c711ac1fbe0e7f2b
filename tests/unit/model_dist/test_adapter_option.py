"""The CLI's ``--adapter SPEC[:WEIGHT]``: folders and installed ``NAME[@VERSION]`` resolve the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from mochi_cli.adapter_opts import parse_adapter_options, split_weight
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from tests.unit.model_dist.helpers import make_adapter


def test_weights_split_off_the_last_colon_only_when_numeric() -> None:
    assert split_weight("team-python@1.0:0.3") == ("team-python@1.0", 0.3)
    assert split_weight("./runs/a") == ("./runs/a", 1.0)
    assert split_weight(r"C:\adapters\x") == (r"C:\adapters\x", 1.0)


def test_folders_and_installed_names_resolve(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "src" / "acme.web")
    install_local(pack(folder, name="acme-web", version="1.2", out_dir=tmp_path / "archives"), force=True)
    got = parse_adapter_options([f"{folder}:0.7", "acme-web@1.2:0.3", "acme-web"], tmp_path)
    assert got is not None
    assert got[0] == (folder.resolve(), 0.7)
    assert got[1][1] == 0.3 and (got[1][0] / "adapter_config.json").is_file()
    assert got[2][0] == got[1][0]
    assert parse_adapter_options([], tmp_path) is None


def test_an_unknown_adapter_is_a_clear_usage_error(tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter, match="nope"):
        parse_adapter_options(["nope@9"], tmp_path)
    with pytest.raises(typer.BadParameter, match="not an adapter folder"):
        parse_adapter_options([str(tmp_path)], tmp_path)
