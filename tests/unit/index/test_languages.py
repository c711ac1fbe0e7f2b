"""Per-language extraction on fixture files: symbols, kinds, qualified names, spans, docstrings, patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from mochi_index.languages import language_for_path
from mochi_index.parse import Parsed, parse_bytes

POLY = Path(__file__).parents[2] / "fixtures" / "index" / "poly"


def _parse(rel: str, cap: int = 256) -> Parsed:
    lang = language_for_path(rel)
    assert lang is not None
    return parse_bytes(rel, lang, (POLY / rel).read_bytes(), cap)


def _table(parsed: Parsed) -> set[tuple[str, str, int, int]]:
    return {(s.kind, s.qualified_name, s.start_line, s.end_line) for s in parsed.symbols}


def _doc(parsed: Parsed, qual: str) -> str:
    return next(s.docstring for s in parsed.symbols if s.qualified_name == qual)


def test_python_symbols_methods_nested_functions_constants_and_docstrings() -> None:
    p = _parse("pkg/config.py")
    assert _table(p) == {
        ("constant", "MAX_RETRIES", 9, 9), ("class", "ConfigError", 12, 13), ("class", "Loader", 16, 42),
        ("method", "Loader.__init__", 19, 20), ("method", "Loader.path", 23, 24),
        ("method", "Loader.fetch", 26, 32), ("method", "Loader.read", 34, 42),
        ("function", "Loader.read._clean", 35, 36), ("function", "load_config", 45, 50),
        ("function", "helper", 54, 55),
    }
    assert _doc(p, "Loader.fetch") == "Fetch one key asynchronously."
    fetch = next(s for s in p.symbols if s.name == "fetch")
    assert fetch.signature == "async def fetch(self, key: str) -> str:" and fetch.parent == "Loader"


def test_typescript_interfaces_types_enums_classes_arrow_functions_and_jsdoc() -> None:
    p = _parse("web/client.ts")
    assert _table(p) == {
        ("interface", "ClientOptions", 5, 8), ("type_alias", "Handler", 10, 10), ("enum", "Method", 12, 15),
        ("constant", "DEFAULT_TIMEOUT", 17, 17), ("class", "HttpClient", 22, 34),
        ("method", "HttpClient.constructor", 23, 23), ("method", "HttpClient.get", 26, 33),
        ("function", "joinUrl", 36, 38), ("function", "makeClient", 40, 40),
    }
    assert _doc(p, "HttpClient") == "A tiny HTTP client."
    assert _doc(p, "HttpClient.get") == "Send a GET request."


def test_tsx_components_and_class_components() -> None:
    p = _parse("web/App.tsx")
    assert _table(p) == {("interface", "Props", 3, 5), ("function", "App", 8, 10), ("function", "Footer", 12, 12),
                         ("class", "Page", 14, 18), ("method", "Page.render", 15, 17)}
    assert _doc(p, "App") == "The application shell."


def test_javascript_functions_classes_and_arrow_functions() -> None:
    p = _parse("web/util.js")
    assert _table(p) == {("function", "sum", 4, 6), ("class", "Counter", 8, 16),
                         ("method", "Counter.increment", 9, 15), ("function", "double", 18, 18)}
    assert _doc(p, "sum") == "Sum an array of numbers."


def test_go_structs_interfaces_methods_on_receivers_and_doc_comments() -> None:
    p = _parse("gosrc/server.go")
    assert _table(p) == {
        ("constant", "MaxConns", 9, 9), ("struct", "Server", 12, 14), ("interface", "Handler", 17, 19),
        ("type_alias", "ID", 21, 21), ("function", "NewServer", 24, 26), ("method", "Server.Start", 29, 37),
        ("function", "listen", 39, 41),
    }
    assert _doc(p, "Server.Start") == "Start starts listening."
    assert _doc(p, "MaxConns") == "MaxConns is the connection limit."


def test_rust_structs_enums_traits_impl_methods_and_doc_comments() -> None:
    p = _parse("rs/lib.rs")
    assert _table(p) == {
        ("constant", "MAX", 4, 4), ("struct", "Cache", 8, 10), ("enum", "CacheError", 14, 16),
        ("trait", "Store", 18, 21), ("method", "Store.get", 20, 20), ("type_alias", "Shared", 23, 23),
        ("method", "Cache.new", 27, 29), ("method", "Cache.insert", 31, 37), ("method", "Cache.get", 41, 43),
        ("function", "make", 46, 48),
    }
    assert _doc(p, "Cache") == "A key-value cache."  # the #[derive] between comment and item is skipped


def test_java_classes_constructors_nested_types_constants_and_javadoc() -> None:
    p = _parse("java/com/acme/Repo.java")
    assert _table(p) == {
        ("class", "Repo", 8, 35), ("constant", "Repo.LIMIT", 9, 9), ("constructor", "Repo.Repo", 12, 12),
        ("method", "Repo.toString", 14, 17), ("method", "Repo.find", 22, 28),
        ("interface", "Repo.Listener", 30, 32), ("method", "Repo.Listener.changed", 31, 31),
        ("enum", "Repo.Mode", 34, 34), ("class", "RepoException", 37, 39),
        ("constructor", "RepoException.RepoException", 38, 38),
    }
    assert _doc(p, "Repo.find") == "Finds users by name."


@pytest.mark.parametrize(("rel", "kind", "key"), [
    ("pkg/config.py", "error_catch", "except KeyError: log"),
    ("pkg/config.py", "import_alias", "import numpy as np"),
    ("pkg/config.py", "logging", "logger.warning(...)"),
    ("web/client.ts", "error_raise", "throw new Error(...)"),
    ("web/client.ts", "import_alias", "import * as path"),
    ("gosrc/server.go", "error_catch", "if err != nil: return"),
    ("gosrc/server.go", "error_raise", "errors.New(...)"),
    ("rs/lib.rs", "decorator", "#[derive(Debug, Clone)]"),
    ("rs/lib.rs", "import_alias", "use std::collections::HashMap as Map"),
    ("java/com/acme/Repo.java", "error_catch", "catch (IllegalStateException): throw"),
    ("java/com/acme/Repo.java", "decorator", "@Override"),
])
def test_pattern_sites_are_mined_per_language(rel: str, kind: str, key: str) -> None:
    assert (kind, key) in {(s.kind, s.key) for s in _parse(rel).sites}


def test_chunks_cover_definitions_with_their_doc_comments_and_respect_the_token_cap() -> None:
    p = _parse("gosrc/server.go")
    start = {c.symbol: c.start_line for c in p.chunks}
    assert start["NewServer"] == 23 and start["Start"] == 28  # the doc comment line above each function
    small = _parse("pkg/config.py", cap=40)
    assert all(len(c.text) <= 40 * 4 + 80 for c in small.chunks)  # one over-long line may exceed
    loader = [c for c in small.chunks if c.symbol.startswith("Loader")]
    assert len(loader) > 1 and {c.symbol for c in loader} >= {"Loader", "Loader.read", "Loader.fetch"}
    lines = (POLY / "pkg/config.py").read_text().split("\n")
    for c in small.chunks:
        assert c.text == "\n".join(lines[c.start_line - 1: c.end_line])


@pytest.mark.parametrize("rel", ["pkg/config.py", "web/client.ts", "web/App.tsx", "web/util.js", "gosrc/server.go",
                                 "rs/lib.rs", "java/com/acme/Repo.java"])
@pytest.mark.parametrize("cap", [16, 64, 256])
def test_chunks_cover_every_non_blank_line_exactly_once(rel: str, cap: int) -> None:
    lines = (POLY / rel).read_text().split("\n")
    seen: list[int] = []
    for c in _parse(rel, cap).chunks:
        seen += range(c.start_line, c.end_line + 1)
    assert len(seen) == len(set(seen)), "overlapping chunks"
    assert [i + 1 for i, line in enumerate(lines) if line.strip() and i + 1 not in seen] == []
