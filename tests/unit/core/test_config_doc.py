"""README's configuration table is generated from the config dataclasses and kept equal to them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mochi_core import config as cfg
from mochi_core.config_doc import BEGIN, END, current_table, main, render_table, rows, update

README = Path(__file__).parents[3] / "README.md"


def test_readme_configuration_table_is_the_generated_one() -> None:
    assert current_table(README.read_text(encoding="utf-8")) == render_table(), (
        "README's configuration table is stale: run python -m mochi_core.config_doc --write README.md")


def test_every_config_key_has_a_row_with_its_default_and_help() -> None:
    table = render_table()
    for section in dataclasses.fields(cfg.MochiConfig):
        cls = cfg.AdapterEntry if section.name == "adapters" else type(getattr(cfg.MochiConfig(), section.name))
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{section.name}.{f.name} has no help text"
            assert f"`{f.name}`" in table
    assert '| `[model]` `preset` | string | `"qwen2.5-coder-0.5b"` |' in table
    assert '| `[model]` `backend` | `"auto"` \\| `"torch"` \\| `"mlx"` \\| `"llama"` \\| `"remote"` | `"auto"` |' in table


def test_check_fails_on_a_stale_table_and_write_repairs_it(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    doc = tmp_path / "README.md"
    doc.write_text(f"# x\n\n{BEGIN}\n| key | old |\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--check", str(doc)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--write", str(doc)]) == 0
    assert main(["--check", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# x\n\n") and text.endswith("\n\nafter\n") and update(text) == text


def test_a_file_without_markers_is_a_one_line_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    doc = tmp_path / "README.md"
    doc.write_text("# no table\n", encoding="utf-8")
    assert main(["--check", str(doc)]) == 1
    assert "markers" in capsys.readouterr().err


def test_list_keys_read_as_lists_even_when_their_items_are_choices(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setitem(cfg._CHOICES, "index.languages", ("python", "go"))
    types = {key: tp for key, tp, _, _ in rows()}
    assert types["`[index]` `languages`"] == 'list of `"python"` \\| `"go"`'
    assert types["`[index]` `include`"] == "list of strings"
