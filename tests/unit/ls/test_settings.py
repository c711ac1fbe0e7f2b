"""Editor settings → MochiConfig, with problems reported instead of raised."""

from __future__ import annotations

from mochi_core.config import MochiConfig
from mochi_ls.settings import model_signature, normalize, settings_to_config


def test_camel_case_settings_wrapped_in_mochi_are_applied_over_the_project_config():
    base = MochiConfig()
    base.completion.max_tokens = 32
    cfg, problems = settings_to_config({"mochi": {"completion": {"debounceMs": 0, "multiline": "never"}}}, base)
    assert problems == []
    assert cfg.completion.debounce_ms == 0 and cfg.completion.multiline == "never"
    assert cfg.completion.max_tokens == 32  # kept from the project's config.toml


def test_invalid_values_are_reported_and_fall_back():
    cfg, problems = settings_to_config({"completion": {"max_tokens": "lots"}, "bogus": 1}, MochiConfig())
    assert cfg.completion.max_tokens == 64
    assert any("completion.max_tokens" in p for p in problems) and any("bogus" in p for p in problems)
    cfg, problems = settings_to_config(["not", "an", "object"], MochiConfig())
    assert problems and cfg == MochiConfig()
    cfg, problems = settings_to_config({"mochi": 3}, MochiConfig())
    assert problems and "settings.mochi" in problems[0]


def test_no_settings_is_the_base_config():
    base = MochiConfig()
    assert settings_to_config(None, base) == (base, [])
    assert settings_to_config({}, base) == (base, [])


def test_normalize_handles_nested_lists_and_acronyms():
    assert normalize({"server": {"enabledLanguages": ["python"]}, "adapters": [{"name": "x", "roleName": "b"}]}) == {
        "server": {"enabled_languages": ["python"]}, "adapters": [{"name": "x", "role_name": "b"}]}


def test_only_model_settings_change_the_model_signature():
    a = MochiConfig()
    b, _ = settings_to_config({"completion": {"max_tokens": 8}}, a)
    c, _ = settings_to_config({"model": {"preset": "qwen2.5-coder-1.5b"}}, a)
    d, _ = settings_to_config({"adapters": [{"name": "team", "weight": 0.5}]}, a)
    assert model_signature(a) == model_signature(b)
    assert model_signature(a) != model_signature(c) and model_signature(a) != model_signature(d)


def test_the_vscode_time_budget_setting_becomes_completion_time_budget_ms():
    cfg, problems = settings_to_config({"mochi": {"completion": {"timeBudgetMs": 5000}}}, MochiConfig())
    assert problems == [] and cfg.completion.time_budget_ms == 5000


def test_the_extensions_own_settings_in_a_whole_settings_section_are_not_reported_as_unknown():
    sent = {"mochi": {"enable": True, "command": ["mochi", "lsp", "--stdio"], "completion": {"timeBudgetMs": 900}}}
    cfg, problems = settings_to_config(sent, MochiConfig())
    assert problems == [] and cfg.completion.time_budget_ms == 900
