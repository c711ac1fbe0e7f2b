"""Read queries over the store: exact/prefix symbol lookup, BM25 chunk retrieval, mixed search.

Symbols are looked up with SQL filters on the ``symbols`` table; chunks with LanceDB's native
full-text index over the ``terms`` column (identifiers plus their snake/camel parts, so
``loadConfig`` and ``load_config`` meet). Rows written after the FTS index was built are still
searched (LanceDB scans unindexed rows) until compaction folds them in.
"""

from __future__ import annotations

import re
from typing import Any

from mochi_index.schema import in_filter, sql_str
from mochi_index.store import Store
from mochi_index.terms import terms
from mochi_index.types import Chunk, SearchHit, Symbol

MAX_QUERY_TERMS = 48
_WORD = re.compile(r"[A-Za-z0-9]+")  # what the FTS tokenizer keeps
# In mixed search a user looks for the code itself; tests repeat its words but rank below it.
_TEST_PATH = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$")
TEST_WEIGHT = 0.8
_KIND_RANK = {"class": 0, "interface": 0, "struct": 0, "trait": 0, "enum": 1, "function": 1, "type_alias": 1,
              "method": 2, "constructor": 2, "constant": 3}
_SYMBOL_COLUMNS = ["name", "qualified_name", "kind", "signature", "docstring", "path", "language",
                   "start_line", "end_line", "parent"]


def _symbol(row: dict[str, Any]) -> Symbol:
    return Symbol(**{k: row[k] for k in _SYMBOL_COLUMNS})


def _chunk(row: dict[str, Any], score: float = 0.0) -> Chunk:
    return Chunk(id=row["id"], path=row["path"], language=row["language"], start_line=row["start_line"],
                 end_line=row["end_line"], text=row["text"], symbol=row["symbol"], score=score)


def definitions(store: Store, names: list[str], limit: int = 20, language: str | None = None) -> list[Symbol]:
    """Symbols whose name or qualified name is one of ``names``; class/function before methods."""
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        return []
    where = f"({in_filter('name', names)} OR {in_filter('qualified_name', names)})"
    if language:
        where += f" AND language = {sql_str(language)}"
    rows = store["symbols"].search().where(where).select(_SYMBOL_COLUMNS).limit(max(limit * 8, 200)).to_list()
    order = {n: i for i, n in enumerate(names)}
    rows.sort(key=lambda r: (order.get(r["qualified_name"], order.get(r["name"], len(order))),
                             r["qualified_name"] not in order, _KIND_RANK.get(r["kind"], 4),
                             r["path"], r["start_line"]))
    return [_symbol(r) for r in rows[:limit]]


def symbols_prefix(store: Store, prefix: str, limit: int = 20) -> list[Symbol]:
    """Symbols whose name starts with ``prefix`` (case-sensitive), shortest names first."""
    if not prefix:
        return []
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = (store["symbols"].search().where(f"name LIKE {sql_str(like + '%')}")
            .select(_SYMBOL_COLUMNS).limit(max(limit * 8, 200)).to_list())
    rows = [r for r in rows if r["name"].startswith(prefix)]
    rows.sort(key=lambda r: (len(r["name"]), r["name"], _KIND_RANK.get(r["kind"], 4), r["path"]))
    return [_symbol(r) for r in rows[:limit]]


def symbols_in(store: Store, path_suffixes: list[str], limit: int = 200) -> list[Symbol]:
    """Symbols of the files whose path ends with one of ``path_suffixes`` (module → file lookups), in file order."""
    suffixes = [x for x in dict.fromkeys(path_suffixes) if x]
    if not suffixes:
        return []
    conds = []
    for suffix in suffixes:
        like = suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(f"(path = {sql_str(suffix)} OR path LIKE {sql_str('%/' + like)})")
    rows = store["symbols"].search().where(" OR ".join(conds)).select(_SYMBOL_COLUMNS).limit(limit).to_list()
    rows.sort(key=lambda r: (r["path"], r["start_line"]))
    return [_symbol(r) for r in rows]


def query_terms(code: str) -> str:
    """The FTS query for a piece of code: its distinct terms, the latest ones kept."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(terms(code)) if len(w) > 1))
    return " ".join(words[-MAX_QUERY_TERMS:])


def has_fts(store: Store) -> bool:
    return any(i.index_type == "FTS" for i in store["chunks"].list_indices())


def similar_chunks(store: Store, code: str, limit: int = 5, exclude_path: str | None = None,
                   language: str | None = None) -> list[Chunk]:
    """Chunks ranked by BM25 against the identifiers of ``code``."""
    q = query_terms(code)
    if limit <= 0 or not q or not has_fts(store):
        return []
    conds = []
    if exclude_path:
        conds.append(f"path != {sql_str(exclude_path)}")
    if language:
        conds.append(f"language = {sql_str(language)}")
    query = store["chunks"].search(q, query_type="fts", fts_columns="terms")
    if conds:
        query = query.where(" AND ".join(conds), prefilter=True)
    rows = query.select(["id", "path", "language", "start_line", "end_line", "text", "symbol", "_score"]).limit(limit).to_list()
    return [_chunk(r, float(r.get("_score", 0.0))) for r in rows]


def search(store: Store, query: str, kind: str | None, limit: int, patterns: Any) -> list[SearchHit]:
    """Mixed search: symbols (exact, then prefix), chunks (BM25), patterns; scores comparable (0..1]."""
    hits: list[SearchHit] = []
    idents = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", query)
    if kind in (None, "symbol") and idents:
        joined = _joined_names(idents)
        if joined:  # "cancel token" names CancelToken / cancel_token / cancelToken: that is the answer
            for i, s in enumerate(definitions(store, joined, limit=limit)):
                hits.append(_symbol_hit(s, 1.0 - i * 0.001))
        exact = definitions(store, idents, limit=limit)
        seen = {(s.path, s.start_line) for s in exact}
        prefix = [s for s in symbols_prefix(store, idents[-1], limit=limit) if (s.path, s.start_line) not in seen]
        # One identifier: its definition is the answer. Several words: BM25 chunks lead.
        top_exact, top_prefix = (1.0, 0.6) if len(idents) == 1 else (0.75, 0.5)
        for i, s in enumerate(exact):
            hits.append(_symbol_hit(s, top_exact - i * 0.001))
        for i, s in enumerate(prefix):
            hits.append(_symbol_hit(s, top_prefix - i * 0.001))
    if kind in (None, "chunk"):
        chunks = similar_chunks(store, query, limit=limit * 2)  # room for test files to sink
        top = max((c.score for c in chunks), default=1.0) or 1.0
        for c in chunks:
            weight = TEST_WEIGHT if _TEST_PATH.search(c.path) else 1.0
            hits.append(SearchHit(kind="chunk", score=0.9 * weight * c.score / top, path=c.path, start_line=c.start_line,
                                  end_line=c.end_line, title=c.symbol or c.path, text=c.text))
    if kind in (None, "pattern"):
        for i, p in enumerate(patterns(query, None, None, limit)):
            path, _, line = (p.examples[0] if p.examples else ":0").rpartition(":")
            hits.append(SearchHit(kind="pattern", score=0.6 - i * 0.01, path=path,
                                  start_line=int(line or 0), end_line=int(line or 0), title=p.key,
                                  text=f"{p.description}\n{p.snippet}".strip()))
    hits.sort(key=lambda h: -h.score)
    unique: dict[tuple[str, str, int, str], SearchHit] = {}
    for h in hits:  # best score first, so the first of duplicates is kept
        unique.setdefault((h.kind, h.path, h.start_line, h.title), h)
    return list(unique.values())[:limit]


def _joined_names(words: list[str]) -> list[str]:
    """Identifier spellings of a multi-word query (Pascal, snake, camel), or [] for one word."""
    if len(words) < 2 or len(words) > 4 or not all(w.isalnum() for w in words):
        return []
    low = [w.lower() for w in words]
    return ["".join(w.capitalize() for w in low), "_".join(low), low[0] + "".join(w.capitalize() for w in low[1:])]


def _symbol_hit(s: Symbol, score: float) -> SearchHit:
    text = s.signature + (f"\n{s.docstring}" if s.docstring else "")
    return SearchHit(kind="symbol", score=score, path=s.path, start_line=s.start_line, end_line=s.end_line,
                     title=s.qualified_name, text=text)
