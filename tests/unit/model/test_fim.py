"""FIM prompt formats: each family's layout, detection from tokenizer vocabularies, snippet layouts."""

from __future__ import annotations

import logging

import pytest

from mochi_model.fim import FIM_FORMATS, build_prompt, detect_fim_format
from mochi_model.types import Snippet

SNIP = [Snippet(path="pkg/util.py", text="def helper(x):\n    return x * 2")]


@pytest.mark.parametrize(("name", "expected"), [
    ("qwen", "<|fim_prefix|>def f():\n    <|fim_suffix|>\nprint(f())<|fim_middle|>"),
    ("starcoder2", "<fim_prefix>def f():\n    <fim_suffix>\nprint(f())<fim_middle>"),
    ("deepseek", "<｜fim▁begin｜>def f():\n    <｜fim▁hole｜>\nprint(f())<｜fim▁end｜>"),
    ("codellama", "<PRE> def f():\n     <SUF>\nprint(f()) <MID>"),
    ("codestral", "<s>[SUFFIX]\nprint(f())[PREFIX]def f():\n    "),
])
def test_each_fim_format_builds_its_prompt(name, expected):
    assert build_prompt(FIM_FORMATS[name], "def f():\n    ", "\nprint(f())") == expected


@pytest.mark.parametrize(("tokens", "name"), [
    (["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>"], "qwen"),
    (["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"], "starcoder2"),
    (["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "deepseek"),
    (["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama"),
    (["[SUFFIX]", "[PREFIX]", "</s>"], "codestral"),
])
def test_fim_format_is_detected_from_special_tokens(tokens, name):
    fmt = detect_fim_format(["a", "b", *tokens])
    assert fmt is not None and fmt.name == name


def test_a_model_without_fim_tokens_completes_from_the_prefix_with_a_warning(tiny_model_dir, caplog):
    from mochi_model.engine import InferenceEngine
    from tests.unit.model.helpers import tiny_backend

    assert detect_fim_format(["<s>", "</s>", "hello"]) is None
    with caplog.at_level(logging.WARNING):
        engine = InferenceEngine(backend=tiny_backend(tiny_model_dir), fim_format="none")
        engine._pick_fim("auto")  # the tiny tokenizer has Qwen tokens: detected, no warning
    assert engine.fim is None
    assert build_prompt(None, "x = ", "\ny = 2", SNIP, language="python") == (
        "# file: pkg/util.py\n# def helper(x):\n#     return x * 2\n\nx = ")
    out = engine.complete_fim("x = ", "\ny = 2", max_tokens=3, multiline=False)
    assert out.extra["fim_format"] == "prefix-only"


def test_tiny_tokenizer_is_detected_as_qwen(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert detect_fim_format(tok.get_vocab()).name == "qwen"


def test_snippets_come_first_as_comments_in_the_language_of_the_file():
    prompt = build_prompt(FIM_FORMATS["qwen"], "let a = ", ";", SNIP, language="typescript", path="src/a.ts")
    assert prompt == ("<|fim_prefix|>// file: pkg/util.py\n// def helper(x):\n//     return x * 2\n\n"
                      "let a = <|fim_suffix|>;<|fim_middle|>")


def test_repo_level_layout_uses_file_separator_tokens():
    prompt = build_prompt(FIM_FORMATS["qwen"], "x = ", "", SNIP, path="app/main.py", context_format="repo",
                          repo_name="demo")
    assert prompt == ("<|repo_name|>demo\n<|file_sep|>pkg/util.py\ndef helper(x):\n    return x * 2\n"
                      "<|file_sep|>app/main.py\n<|fim_prefix|>x = <|fim_suffix|><|fim_middle|>")
    # Formats without repo tokens fall back to comments.
    assert build_prompt(FIM_FORMATS["deepseek"], "x = ", "", SNIP, context_format="repo").count("# file:") == 1
