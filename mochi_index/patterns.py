"""Project idioms mined from syntax trees: one walk per file yields *pattern sites*.

A site is one occurrence group inside one file: ``(kind, key, first line, count, snippet)``.
Kinds: ``error_raise`` (raise/throw/``fmt.Errorf``/``Err(..)``), ``error_catch`` (except/catch
and what the handler does, Go's ``if err != nil``), ``logging`` (logger/console/log calls and
macros), ``decorator`` (decorators, Java annotations, Rust attributes), ``import_alias`` and
``call_sequence`` (two calls that follow each other in a function body). Sites are stored per
file (so they follow the file through incremental updates) and aggregated into
:class:`~mochi_index.types.Pattern` records by :mod:`mochi_index.pattern_stats`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node

_QUERIES = {
    "python": "(call) @call (raise_statement) @x (except_clause) @x (decorator) @x (aliased_import) @x "
              "(function_definition) @fn",
    "javascript": "(call_expression) @call (throw_statement) @x (catch_clause) @x (decorator) @x "
                  "(namespace_import) @x (import_specifier) @x (function_declaration) @fn (method_definition) @fn "
                  "(arrow_function) @fn (function_expression) @fn",
    "go": "(call_expression) @call (if_statement) @x (import_spec) @x (function_declaration) @fn "
          "(method_declaration) @fn (func_literal) @fn",
    "rust": "(call_expression) @call (macro_invocation) @call (attribute_item) @x (use_as_clause) @x "
            "(function_item) @fn (closure_expression) @fn",
    "java": "(method_invocation) @call (throw_statement) @x (catch_clause) @x (marker_annotation) @x "
            "(annotation) @x (method_declaration) @fn (constructor_declaration) @fn (lambda_expression) @fn",
}
_QUERIES["typescript"] = _QUERIES["tsx"] = _QUERIES["javascript"]
_compiled: dict[str, Any] = {}


def _query(language: str) -> Any:
    """A cursor over the compiled pattern query of ``language`` (tree traversal happens in C)."""
    if language not in _compiled:
        from tree_sitter import Query, QueryCursor

        from mochi_index.languages import parser_for

        lang = parser_for(language).language
        _compiled[language] = QueryCursor(Query(lang, _QUERIES[language]))
    return _compiled[language]


CALLS = {"call", "call_expression", "method_invocation", "macro_invocation"}
_LOG = re.compile(
    r"^(?:self\.|this\.)?_?(?:logger|log|logging|LOG|LOGGER|console|slog)\."
    r"(?:debug|info|warning|warn|error|exception|critical|fatal|trace|log|print\w*|fatal\w*|error\w*"
    r"|info\w*|warn\w*|debug\w*|Print\w*|Fatal\w*|Error\w*|Info\w*|Warn\w*|Debug\w*)$"
)
_LOG_MACROS = re.compile(r"^(?:log::|tracing::)?(?:trace|debug|info|warn|error)!$")
_ERR_CALLS = {"errors.New", "fmt.Errorf", "errors.Wrap", "errors.Wrapf", "panic"}
_ERR_MACROS = {"panic!", "bail!", "anyhow!", "unreachable!", "todo!", "unimplemented!"}
_SIMPLE_CALLEE = re.compile(r"^[\w.$:]+!?$")


@dataclass
class Site:
    kind: str
    key: str
    line: int  # 1-based line of the first occurrence in the file
    count: int
    snippet: str


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def callee(node: Node) -> str:
    """Dotted callee name of a call node ("" when it is not a plain name)."""
    if node.type == "macro_invocation":
        return _text(node.child_by_field_name("macro")) + "!"
    if node.type == "method_invocation":  # Java
        obj = node.child_by_field_name("object")
        name = _text(node.child_by_field_name("name"))
        return f"{_text(obj)}.{name}" if obj is not None else name
    fn = node.child_by_field_name("function")
    name = _text(fn)
    return name if _SIMPLE_CALLEE.match(name) and len(name) <= 60 else ""


def _handler(block: Node | None) -> str:
    """What an except/catch block does first: raise, return, pass, log, continue or handle."""
    if block is None or not block.named_child_count:
        return "empty"
    first = block.named_children[0]
    if first.type in ("statement_list",) and first.named_child_count:
        first = first.named_children[0]
    if first.type in ("raise_statement", "throw_statement"):
        return "raise" if first.type == "raise_statement" else "throw"
    if first.type in ("return_statement", "pass_statement", "continue_statement", "break_statement"):
        return first.type.split("_")[0]
    if first.type == "expression_statement" and first.named_child_count:
        call = first.named_children[0]
        if call.type in CALLS and (_LOG.match(callee(call)) or callee(call) == "print"):
            return "log"
    return "handle"


class _Miner:
    def __init__(self, language: str) -> None:
        self.language = language
        self.sites: dict[tuple[str, str], Site] = {}

    def add(self, kind: str, key: str, node: Node) -> None:
        site = self.sites.get((kind, key))
        if site is None:
            snippet = _text(node).split("\n", 1)[0].strip()[:200]
            self.sites[(kind, key)] = Site(kind, key, node.start_point.row + 1, 1, snippet)
        else:
            site.count += 1

    def run(self, root: Node) -> None:
        """Visit the captured nodes in source order; calls are grouped by their innermost function."""
        captured = _query(self.language).captures(root)
        events: list[tuple[int, int, str, Node]] = []
        for tag, nodes in captured.items():
            events.extend((n.start_byte, -n.end_byte, tag, n) for n in nodes)
        events.sort(key=lambda e: (e[0], e[1]))
        stack: list[tuple[int, list[str]]] = []  # (end byte, calls so far) of enclosing functions
        for start, neg_end, tag, node in events:
            while stack and stack[-1][0] <= start:
                stack.pop()
            if tag == "fn":
                stack.append((-neg_end, []))
            elif tag == "call":
                name = callee(node)
                if not name:
                    continue
                self.call(name, node)
                if stack:
                    calls = stack[-1][1]
                    if calls and calls[-1] != name:
                        self.add("call_sequence", f"{calls[-1]} → {name}", node)
                    calls.append(name)
            else:
                self.other(node.type, node)

    def call(self, name: str, node: Node) -> None:
        if _LOG.match(name) or _LOG_MACROS.match(name):
            self.add("logging", f"{name}(...)", node)
        elif name in _ERR_CALLS or name in _ERR_MACROS:
            self.add("error_raise", f"{name}(...)", node)
        elif name == "Err" and self.language == "rust":
            args = node.child_by_field_name("arguments")
            inner = args.named_children[0] if args is not None and args.named_child_count else None
            what = callee(inner) if inner is not None and inner.type in CALLS else ""
            self.add("error_raise", f"Err({what}(...))" if what else "Err(...)", node)

    def other(self, t: str, node: Node) -> None:
        if t == "raise_statement":
            exc = node.named_children[0] if node.named_child_count else None
            if exc is None:
                key = "raise"
            elif exc.type in CALLS:
                key = f"raise {callee(exc) or '<expr>'}(...)"
            else:
                key = f"raise {_text(exc)[:60]}"
            if node.named_child_count > 1:
                key += " from ..."
            self.add("error_raise", key, node)
        elif t == "throw_statement":
            exc = node.named_children[0] if node.named_child_count else None
            ctor = None
            if exc is not None and exc.type in ("new_expression", "object_creation_expression"):
                ctor = exc.child_by_field_name("constructor") or exc.child_by_field_name("type")
            self.add("error_raise", f"throw new {_text(ctor)}(...)" if ctor is not None else "throw <expr>", node)
        elif t == "except_clause":
            types = [c for c in node.named_children if c.type != "block"]
            what = _text(types[0]).split(" as ")[0].strip() if types else ""
            block = next((c for c in node.named_children if c.type == "block"), None)
            self.add("error_catch", f"except {what}: {_handler(block)}".replace("except :", "except:"), node)
        elif t == "catch_clause":
            param = node.child_by_field_name("parameter")
            ptype = next((c for c in node.named_children if c.type == "catch_formal_parameter"), None)
            if ptype is not None:  # Java: catch (IOException e)
                what = " ".join(_text(ptype).split()[:-1])
            else:
                what = _text(param.child_by_field_name("type")) if param is not None else ""
            block = node.child_by_field_name("body") or next((c for c in node.named_children if c.type == "block"), None)
            self.add("error_catch", f"catch ({what}): {_handler(block)}" if what else f"catch: {_handler(block)}", node)
        elif t == "if_statement" and self.language == "go":
            cond = _text(node.child_by_field_name("condition"))
            if cond.replace(" ", "").endswith("err!=nil"):
                self.add("error_catch", f"if err != nil: {_handler(node.child_by_field_name('consequence'))}", node)
        elif t == "decorator":
            expr = node.named_children[0] if node.named_child_count else None
            name = f"{callee(expr)}(...)" if expr is not None and expr.type in CALLS else _text(expr)
            self.add("decorator", f"@{name[:80]}", node)
        elif t in ("marker_annotation", "annotation"):
            self.add("decorator", f"@{_text(node.child_by_field_name('name'))}", node)
        elif t == "attribute_item":
            self.add("decorator", re.sub(r"\s+", " ", _text(node))[:80], node)
        elif t == "aliased_import":
            parent = node.parent
            module = _text(parent.child_by_field_name("module_name")) if parent is not None else ""
            plain = f"import {_text(node)}"
            self.add("import_alias", f"from {module} {plain}" if parent is not None and parent.type ==
                     "import_from_statement" else plain, node)
        elif t == "namespace_import" or (t == "import_specifier" and node.child_by_field_name("alias")):
            self.add("import_alias", f"import {{{_text(node)}}}" if t == "import_specifier" else f"import {_text(node)}", node)
        elif t == "import_spec" and node.child_by_field_name("name") is not None:
            self.add("import_alias", f"import {_text(node)}", node)
        elif t == "use_as_clause":
            self.add("import_alias", f"use {_text(node)}", node)


def mine_sites(root: Node, language: str) -> list[Site]:
    """Pattern sites of one parsed file."""
    miner = _Miner(language)
    miner.run(root)
    return list(miner.sites.values())
