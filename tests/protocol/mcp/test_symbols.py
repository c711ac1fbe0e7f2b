"""The unknown-symbol check against a real index of the shop project."""

from __future__ import annotations

from pathlib import Path

import pytest

from mochi_mcp.symbols import calls, locally_defined, unknown_calls


@pytest.fixture
def index(shop: Path):
    from mochi_index import ProjectIndex

    idx = ProjectIndex.open(shop, create=False)
    yield idx
    idx.close()


def check(code: str, index, known: str = "") -> list[str]:  # noqa: ANN001
    return unknown_calls(code, language="python", index=index, known_text=known, project_modules=frozenset({"shop"}))


def test_real_project_calls_builtins_and_local_helpers_are_not_flagged(index) -> None:  # noqa: ANN001
    code = ("from shop.pricing import apply_discount\nimport json\n\n"
            "def helper(x):\n    return len(str(x))\n\n"
            "def total(inv):\n    print(json.dumps(helper(apply_discount(9.0, 5))))\n"
            "    return Inventory.total_value(inv)\n")
    assert check(code, index) == []


def test_made_up_functions_and_methods_of_project_classes_are_flagged(index) -> None:  # noqa: ANN001
    code = ("from shop.pricing import vat_for\n\n"
            "def f(inv):\n    x = vat_for('fr')\n    Inventory.restock_all(inv)\n    return compute_refund(x)\n")
    assert check(code, index) == ["vat_for", "compute_refund", "Inventory.restock_all"]


def test_names_given_in_the_prompt_context_count_as_known(index) -> None:  # noqa: ANN001
    assert check("y = make_widget(3)\n", index, known="def make_widget(n): ...") == []


def test_calls_inside_strings_and_comments_are_ignored() -> None:
    bare, attr = calls('x = "not_a_call(1)"  # nor_this(2)\nreal_call(3)\n')
    assert bare == ["real_call"] and attr == []


def test_parameters_loop_variables_and_imports_count_as_local_definitions() -> None:
    names = locally_defined("import os.path as osp\nfrom a import (b, c as d)\ndef f(cb, n=1):\n"
                            "    for item in n:\n        cb(item)\n", "python")
    assert {"osp", "b", "d", "f", "cb", "n", "item"} <= names
