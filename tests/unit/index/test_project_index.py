"""ProjectIndex end to end on a fixture project: real tree-sitter, real LanceDB files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mochi_index import IndexMissing, ProjectIndex


@pytest.fixture
def poly(fixture_project) -> Path:
    return fixture_project("index/poly")


def test_open_without_create_raises_index_missing_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="mochi index"):
        ProjectIndex.open(tmp_path, create=False)


def test_update_indexes_every_supported_language_and_counts_unknown_ones(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    stats = idx.update()
    assert stats.parsed == 7
    assert stats.skipped.get("unknown_language") == 1  # main.c
    data = idx.stats()
    assert data["files_by_language"] == {"python": 1, "typescript": 1, "tsx": 1, "javascript": 1, "go": 1,
                                         "rust": 1, "java": 1}
    assert data["symbols_by_kind"]["method"] >= 8
    assert idx.exists


def test_definitions_find_names_and_qualified_names(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    found = idx.definitions(["load_config", "Loader.read"])
    assert [(s.qualified_name, s.path, s.start_line) for s in found] == [
        ("load_config", "pkg/config.py", 45), ("Loader.read", "pkg/config.py", 34)]
    assert found[0].docstring == "Load the configuration below ``root``."
    assert idx.definitions(["get"], language="rust")[0].language == "rust"
    assert idx.definitions(["no_such_name"]) == []


def test_symbols_prefix_treats_underscore_literally(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    names = [s.name for s in idx.symbols_prefix("load_")]
    assert names == ["load_config"]
    assert [s.name for s in idx.symbols_prefix("Max")] == ["MaxConns"]  # case-sensitive


def test_similar_chunks_rank_the_matching_function_first_and_honour_exclude_path(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    hits = idx.similar_chunks("url = joinUrl(base, path)", limit=3)
    assert hits and (hits[0].path, hits[0].symbol) == ("web/client.ts", "joinUrl")
    assert all(h.path != "web/client.ts" for h in idx.similar_chunks("joinUrl", exclude_path="web/client.ts"))
    camel = idx.similar_chunks("join url", limit=1)
    assert camel and camel[0].symbol == "joinUrl"  # camelCase parts are searchable words
    assert idx.similar_chunks("url = joinUrl(base, path)", limit=0) == []  # a zero budget asks for nothing


def test_search_mixes_symbols_chunks_and_patterns(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    hits = idx.search("ConfigError")
    assert hits[0].kind == "symbol" and hits[0].title == "ConfigError"
    assert {h.kind for h in idx.search("ConfigError", limit=20)} >= {"symbol", "chunk", "pattern"}
    assert all(h.kind == "chunk" for h in idx.search("ConfigError", kind="chunk"))


def test_patterns_report_recurring_idioms_with_locations(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    raised = idx.patterns(kind="error_raise", language="python")
    assert raised[0].key == "raise ConfigError(...)"
    assert raised[0].count == 2  # the third is `raise ConfigError(...) from ...`, its own idiom
    assert raised[0].examples[0] == "pkg/config.py:32"
    naming = idx.patterns(kind="naming", language="python")
    assert any(p.key == "function names: snake_case" for p in naming)


def test_patterns_answer_goals_in_words_and_code_excerpts(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    goal = idx.patterns("how do I log an error", language="python")
    assert goal and goal[0].kind in ("logging", "error_raise", "error_catch")
    assert {p.kind for p in idx.patterns("raise an exception", language="python")} == {"error_raise"}
    code = idx.patterns("raise ConfigError('bad value')", language="python")
    assert code[0].key == "raise ConfigError(...)"
    assert idx.patterns("zebra giraffe") == []  # nothing matches: no noise from short substrings


def test_iter_files_yields_indexed_files_unless_skipped_ones_are_asked_for(poly: Path) -> None:
    (poly / "blob.py").write_bytes(b"\x00\x01binary")
    idx = ProjectIndex.open(poly)
    idx.update()
    assert "blob.py" not in {f.path for f in idx.iter_files()}
    assert {f.skip for f in idx.iter_files(include_skipped=True) if f.path == "blob.py"} == {"binary"}


def test_a_multi_word_search_finds_the_identifier_it_spells(poly: Path) -> None:
    idx = ProjectIndex.open(poly)
    idx.update()
    assert idx.search("http client")[0].title == "HttpClient"
    assert idx.search("load config")[0].title == "load_config"
    assert idx.search("join url")[0].title == "joinUrl"
