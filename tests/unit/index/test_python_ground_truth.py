"""Python symbol counts must equal what the standard `ast` module finds on real code we did not write."""

from __future__ import annotations

import ast
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mochi_index import ProjectIndex
from mochi_index.parse import parse_bytes

SITE = Path(ast.__file__).parent  # the standard library: real, varied, always installed
SAMPLES = ["json", "email", "asyncio", "concurrent", "importlib", "logging", "unittest"]


def _ast_counts(data: bytes) -> Counter[str]:
    counts: Counter[str] = Counter()
    tree = ast.parse(data)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            counts["class"] += 1
            for child in node.body:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    counts["method"] += 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            counts["function_or_method"] += 1
    counts["function"] = counts.pop("function_or_method", 0) - counts["method"]
    return counts


def _our_counts(path: str, data: bytes) -> Counter[str]:
    parsed = parse_bytes(path, "python", data, 256, check=False)
    assert not parsed.skip, parsed.skip
    return Counter(s.kind for s in parsed.symbols if s.kind in ("class", "method", "function"))


def _files() -> list[Path]:
    out: list[Path] = []
    for pkg in SAMPLES:
        out += sorted((SITE / pkg).rglob("*.py"))
    return [p for p in out if "test" not in p.parts and "tests" not in p.parts]


def test_python_symbol_counts_equal_ast_on_standard_library_packages() -> None:
    files = _files()
    assert len(files) > 80
    mismatches = []
    for f in files:
        data = f.read_bytes()
        ours = _our_counts(str(f), data)
        theirs = _ast_counts(data)
        for kind in ("class", "method", "function"):
            if ours[kind] != theirs[kind]:
                mismatches.append((str(f), kind, ours[kind], theirs[kind]))
    assert mismatches == []


def test_a_full_index_of_a_real_package_stores_exactly_the_ast_definitions(tmp_path: Path) -> None:
    pytest.importorskip("typer")
    import typer

    src = Path(typer.__file__).parent
    dest = tmp_path / "typer"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    expected: Counter[str] = Counter()
    for f in dest.rglob("*.py"):
        expected += _ast_counts(f.read_bytes())
    idx = ProjectIndex.open(dest)
    idx.update()
    by_kind = idx.stats()["symbols_by_kind"]
    assert {k: by_kind.get(k, 0) for k in ("class", "method", "function")} == \
        {k: expected[k] for k in ("class", "method", "function")}
