"""Post-processing of raw completions: line mode, fences and chat text, block ends, suffix repeats, brackets."""

from __future__ import annotations

import pytest

from mochi_model.postprocess import (
    balance_brackets,
    block_end,
    clean_completion,
    decide_multiline,
    strip_chat,
    trim_suffix_overlap,
)


@pytest.mark.parametrize(("prefix", "suffix", "multi"), [
    ("def f(x):\n    ", "\n", True),          # blank line inside a body
    ("def f(x):", "\n", True),               # line opens a block
    ("function f() {", "\n}", True),
    ("x = compute(", ")\n", True),           # only a closer after the cursor
    ("x = comp", "\n", False),               # mid-expression
    ("print(", "value)\n", False),           # text after the cursor
])
def test_single_or_multi_line_is_decided_from_the_cursor_context(prefix, suffix, multi):
    assert decide_multiline(prefix, suffix) is multi


def test_code_fences_and_trailing_chat_text_are_stripped():
    raw = "```python\nreturn a + b\n```\n\nThis function adds two numbers."
    assert strip_chat(raw) == "return a + b\n"
    assert strip_chat("return x\n\nExplanation: it returns x") == "return x"
    assert strip_chat("return x<|im_end|>\nmore") == "return x"


def test_a_multi_line_completion_ends_where_its_block_ends():
    prefix = "def f(x):\n    "
    text = "y = x + 1\n    return y\n\ndef g():\n    pass"
    assert text[: block_end(text, prefix)] == "y = x + 1\n    return y\n"
    opener = "def f(x):"
    body = "\n    return x\ndef g():"
    assert body[: block_end(body, opener)] == "\n    return x"
    assert block_end("\n        1,\n    )", "    x = f(") is None  # a closer may sit at the opener's level


def test_completion_is_cut_where_it_repeats_the_suffix():
    suffix = "\n    return result\n"
    text = "result = a + b\n    return result"
    assert trim_suffix_overlap(text, suffix, multiline=True) == "result = a + b"
    assert trim_suffix_overlap("a, b)", ")\n", multiline=False) == "a, b"
    assert trim_suffix_overlap("x + 1", "\n", multiline=False) == "x + 1"


def test_unbalanced_brackets_are_removed():
    assert balance_brackets("a, b))", "foo(", "") == "a, b)"
    assert balance_brackets("x]", "y = ", "") == "x"
    assert balance_brackets("max(a, b", "y = ", "\n") == "max"  # cut back to the last balanced point
    assert balance_brackets("call(1)\nz = (2", "", "") == "call(1)\nz ="
    assert balance_brackets("'(' + s", "x = ", "") == "'(' + s"   # brackets in strings do not count
    assert balance_brackets("a, b", "foo(", ")") == "a, b"


def test_openers_that_the_suffix_closes_are_kept():
    # a formatted multi-line call: the arguments and the closer follow on the next lines
    body = "def f(x):\n    "
    assert balance_brackets("logger.warning(", body, '\n        "msg %s", x,\n    )\n    return x\n') == "logger.warning("
    assert balance_brackets("if (", body, "\n        a and b\n    ):\n        pass\n") == "if ("
    assert balance_brackets("x = {", body, '\n        "a": [1, 2],\n    }\n') == "x = {"
    # the suffix's closer belongs to the prefix's own open bracket: still cut
    assert balance_brackets("bar(1", "x = foo(", ")\n") == "bar"
    # ... unless the suffix closes both, innermost first
    assert balance_brackets("bar(1,", "x = foo(", "\n    2)\n)\n") == "bar(1,"
    # a different closer, a balanced suffix, or no suffix: cut as before
    assert balance_brackets("call(", body, "\n        1,\n    ]\n") == "call"
    assert balance_brackets("call(", body, "\n    y = g(x)\n") == "call"
    assert balance_brackets("call(", body, "") == "call"
    # not well nested after the cursor: nothing is trusted
    assert balance_brackets("call(", body, "\n    [1, 2)\n)\n") == "call"


def test_clean_completion_applies_every_rule_in_order():
    prefix = "def area(r):\n    "
    suffix = "\n\nprint(area(2))\n"
    raw = "```python\nreturn 3.14 * r * r\n\nprint(area(2))\n```\nThe function computes the area."
    assert clean_completion(raw, prefix, suffix, multiline=True) == "return 3.14 * r * r"
    assert clean_completion("total += x\n    more", "    total = ", "\n", multiline=False) == "total += x"
