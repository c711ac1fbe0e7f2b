"""Arrow schemas of the LanceDB tables under ``.mochi/index/`` and row builders for them.

Every content row carries ``file_hash``: the content hash of the file version it came from. The
``files`` row is written last and holds the row counts, so a crash between the writes is
detected later (counts or hashes disagree) and repaired by :meth:`Store.repair`.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from mochi_index.parse import Parsed
from mochi_index.terms import chunk_terms

SCHEMA_VERSION = 1

FILES = pa.schema([
    ("path", pa.string()), ("language", pa.string()), ("content_hash", pa.string()),
    ("size", pa.int64()), ("mtime_ns", pa.int64()), ("indexed_at", pa.float64()),
    ("skip", pa.string()), ("n_symbols", pa.int32()), ("n_chunks", pa.int32()), ("n_sites", pa.int32()),
])
SYMBOLS = pa.schema([
    ("name", pa.string()), ("qualified_name", pa.string()), ("kind", pa.string()),
    ("signature", pa.string()), ("docstring", pa.string()), ("path", pa.string()),
    ("language", pa.string()), ("start_line", pa.int32()), ("end_line", pa.int32()),
    ("parent", pa.string()), ("file_hash", pa.string()),
])
CHUNKS = pa.schema([
    ("id", pa.string()), ("path", pa.string()), ("language", pa.string()), ("start_line", pa.int32()),
    ("end_line", pa.int32()), ("text", pa.string()), ("symbol", pa.string()), ("terms", pa.string()),
    ("file_hash", pa.string()),
])
SITES = pa.schema([
    ("kind", pa.string()), ("key", pa.string()), ("language", pa.string()), ("path", pa.string()),
    ("line", pa.int32()), ("count", pa.int32()), ("snippet", pa.string()), ("file_hash", pa.string()),
])
PATTERNS = pa.schema([
    ("kind", pa.string()), ("language", pa.string()), ("key", pa.string()), ("description", pa.string()),
    ("count", pa.int32()), ("examples", pa.list_(pa.string())), ("snippet", pa.string()),
])
CONTENT_TABLES = {"symbols": SYMBOLS, "chunks": CHUNKS, "pattern_sites": SITES}
ALL_TABLES = {"files": FILES, **CONTENT_TABLES, "patterns": PATTERNS}

def files_rows(batch: list[Parsed]) -> pa.Table:
    now = time.time()
    return pa.Table.from_pylist([{
        "path": p.path, "language": p.language, "content_hash": p.content_hash, "size": p.size,
        "mtime_ns": p.mtime_ns, "indexed_at": now, "skip": p.skip, "n_symbols": p.row_counts()[0],
        "n_chunks": p.row_counts()[1], "n_sites": p.row_counts()[2],
    } for p in batch], schema=FILES)


def content_rows(batch: list[Parsed]) -> dict[str, pa.Table]:
    sym: list[dict[str, Any]] = []
    chk: list[dict[str, Any]] = []
    sit: list[dict[str, Any]] = []
    for p in batch:
        h = p.content_hash
        for s in p.symbols:
            sym.append({"name": s.name, "qualified_name": s.qualified_name, "kind": s.kind,
                        "signature": s.signature, "docstring": s.docstring, "path": s.path,
                        "language": s.language, "start_line": s.start_line, "end_line": s.end_line,
                        "parent": s.parent, "file_hash": h})
        for c, t in zip(p.chunks, p.terms or [chunk_terms(c) for c in p.chunks], strict=True):
            chk.append({"id": c.id, "path": c.path, "language": c.language, "start_line": c.start_line,
                        "end_line": c.end_line, "text": c.text, "symbol": c.symbol,
                        "terms": t, "file_hash": h})
        for st in p.sites:
            sit.append({"kind": st.kind, "key": st.key, "language": p.language, "path": p.path,
                        "line": st.line, "count": st.count, "snippet": st.snippet, "file_hash": h})
    return {"symbols": pa.Table.from_pylist(sym, schema=SYMBOLS),
            "chunks": pa.Table.from_pylist(chk, schema=CHUNKS),
            "pattern_sites": pa.Table.from_pylist(sit, schema=SITES)}


def parse_to_rows(root: str, jobs: list[tuple[str, str]], chunk_tokens: int) -> tuple[list[Parsed], dict[str, pa.Table]]:
    """Pool task: parse files and build their Arrow rows here, so only compact tables cross processes."""
    from mochi_index.parse import parse_many

    parsed = parse_many(root, jobs, chunk_tokens)
    rows = content_rows(parsed)
    for p in parsed:
        p.counts = p.row_counts()
        p.symbols, p.chunks, p.sites, p.terms = [], [], [], []
    return parsed, rows


def concat_rows(parts: list[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    return {name: pa.concat_tables([p[name] for p in parts]) for name in parts[0]} if parts else {}


def sql_str(value: str) -> str:
    """A SQL string literal for LanceDB filters."""
    return "'" + value.replace("'", "''") + "'"


def in_filter(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"
