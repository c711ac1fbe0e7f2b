"""Symbols (definitions) from a tree-sitter tree, for every supported language.

One recursive walk per file. Each language has a table of definition node types → symbol kind;
the few shapes a table cannot express (Python decorators, JS ``const f = () => …``, Go method
receivers, Rust ``impl`` blocks) are handled in :func:`_classify`. Qualified names join the
enclosing symbols with dots (``Class.method``, ``Outer.Inner.method``).
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING

from mochi_index.types import Symbol

if TYPE_CHECKING:
    from tree_sitter import Node

DEF_KINDS: dict[str, dict[str, str]] = {
    "python": {"function_definition": "function", "class_definition": "class",
               "type_alias_statement": "type_alias"},
    "javascript": {"function_declaration": "function", "generator_function_declaration": "function",
                   "class_declaration": "class", "method_definition": "method"},
    "typescript": {"function_declaration": "function", "generator_function_declaration": "function",
                   "class_declaration": "class", "abstract_class_declaration": "class",
                   "method_definition": "method", "interface_declaration": "interface",
                   "type_alias_declaration": "type_alias", "enum_declaration": "enum",
                   "function_signature": "function", "internal_module": "module"},
    "go": {"function_declaration": "function", "method_declaration": "method"},
    "rust": {"function_item": "function", "function_signature_item": "function", "struct_item": "struct",
             "enum_item": "enum", "union_item": "struct", "trait_item": "trait", "type_item": "type_alias",
             "const_item": "constant", "static_item": "constant", "mod_item": "module",
             "macro_definition": "macro"},
    "java": {"class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
             "record_declaration": "record", "annotation_type_declaration": "annotation",
             "method_declaration": "method", "constructor_declaration": "constructor"},
}
DEF_KINDS["tsx"] = DEF_KINDS["typescript"]

CLASS_LIKE = {"class", "interface", "struct", "enum", "trait", "record", "annotation", "impl"}
COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
SKIP_OVER = {"attribute_item", "decorator", "marker_annotation", "annotation"}
_JS_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
# Expressions and simple statements never hold a definition we index (lambdas, callbacks and
# anonymous classes are not symbols), so the walk does not enter them: most of a tree is skipped.
NO_DESCEND = frozenset({
    "comment", "line_comment", "block_comment", "identifier", "string", "integer", "float", "true", "false",
    "none", "call", "call_expression", "method_invocation", "arguments", "argument_list", "binary_operator",
    "binary_expression", "comparison_operator", "boolean_operator", "not_operator", "unary_operator",
    "attribute", "subscript", "list", "dictionary", "set", "tuple", "parenthesized_expression",
    "return_statement", "raise_statement", "assert_statement", "pass_statement", "import_statement",
    "import_from_statement", "future_import_statement", "augmented_assignment", "keyword_argument",
    "template_string", "string_literal", "interpreted_string_literal", "raw_string_literal", "number",
    "import_declaration", "use_declaration", "package_clause", "member_expression", "field_expression",
    "selector_expression", "macro_invocation", "throw_statement", "break_statement", "continue_statement",
    "list_comprehension", "dictionary_comprehension", "generator_expression", "conditional_expression",
    "lambda", "await", "concatenated_string", "type", "type_identifier", "field_identifier",
})
# Descended into only when they define something themselves (checked by _classify first).
NO_DESCEND_UNLESS_DEF = frozenset({"expression_statement", "assignment", "field_declaration"})
_DECLARATIONS = {"const_declaration", "type_declaration", "lexical_declaration", "variable_declaration"}
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_WS = re.compile(r"\s+")


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _classify(node: Node, language: str, parent_kind: str) -> tuple[str, str] | None:
    """(kind, name) when ``node`` defines a symbol, else None."""
    t = node.type
    kind = DEF_KINDS[language].get(t)
    if kind is not None:
        if kind == "function" and parent_kind in CLASS_LIKE:
            kind = "method"
        name = _text(node.child_by_field_name("name"))
        return (kind, name) if name else None
    if language == "go" and t == "type_spec":
        body = node.child_by_field_name("type")
        kind = {"struct_type": "struct", "interface_type": "interface"}.get(body.type if body else "", "type_alias")
        return kind, _text(node.child_by_field_name("name"))
    if language == "go" and t == "type_alias":
        return "type_alias", _text(node.child_by_field_name("name"))
    if language == "go" and t == "const_spec" and parent_kind == "":
        return "constant", _text(node.child_by_field_name("name"))
    if language == "rust" and t == "impl_item":
        return "impl", _text(node.child_by_field_name("type"))
    if language in ("javascript", "typescript", "tsx") and t == "variable_declarator" and parent_kind == "":
        name = _text(node.child_by_field_name("name"))
        value = node.child_by_field_name("value")
        if value is not None and value.type in _JS_FUNCTION_VALUES:
            return "function", name
        if _UPPER.match(name) and node.parent is not None and node.parent.type == "lexical_declaration":
            return "constant", name
        return None
    if language == "python" and t == "expression_statement" and parent_kind == "":
        assign = node.named_children[0] if node.named_child_count else None
        if assign is not None and assign.type == "assignment":
            left = assign.child_by_field_name("left")
            ann = _text(assign.child_by_field_name("type"))
            if left is not None and left.type == "identifier":
                name = _text(left)
                if ann.endswith("TypeAlias"):
                    return "type_alias", name
                if _UPPER.match(name):
                    return "constant", name
        return None
    if language == "java" and t == "field_declaration" and parent_kind in CLASS_LIKE:
        mods = next((c for c in node.children if c.type == "modifiers"), None)
        words = _text(mods).split()
        if "static" in words and "final" in words:
            return "constant", _text(node.child_by_field_name("declarator").child_by_field_name("name"))
    return None


def _signature(node: Node, language: str) -> str:
    """The definition's header: from its first byte to the start of its body, whitespace collapsed."""
    body = node.child_by_field_name("body")
    src = node.text or b""
    if body is not None and body.start_byte > node.start_byte:
        head = src[: body.start_byte - node.start_byte]
    else:
        head = src.split(b"\n", 1)[0]
    sig = _WS.sub(" ", head.decode("utf-8", "replace")).strip()
    if language != "python":
        sig = sig.rstrip("{ ").rstrip()
    return sig[:300]


def _python_docstring(node: Node) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_child_count:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or not first.named_child_count:
        return ""
    s = first.named_children[0]
    if s.type != "string":
        return ""
    raw = _text(s)
    m = re.match(r"^[rRuUbBfF]*('''|\"\"\"|'|\")", raw)
    if not m:
        return ""
    q = m.group(1)
    inner = raw[m.end():]
    inner = inner[: -len(q)] if inner.endswith(q) else inner
    return inspect.cleandoc(inner)[:2000]


def _leading_comment(node: Node) -> str:
    """Comments directly above ``node`` (or above its export/decorator wrapper)."""
    anchor = node
    while anchor.parent is not None and (anchor.parent.type in ("export_statement", "decorated_definition")
                                         or (anchor.parent.type in _DECLARATIONS and anchor.prev_named_sibling is None)):
        anchor = anchor.parent
    lines: list[str] = []
    expect_row = anchor.start_point.row
    prev = anchor.prev_sibling
    while prev is not None and (prev.type in COMMENT_TYPES or prev.type in SKIP_OVER):
        if prev.end_point.row < expect_row - 1:
            break
        if prev.type in COMMENT_TYPES:
            lines.insert(0, _text(prev))
        expect_row = prev.start_point.row
        prev = prev.prev_sibling
    return _clean_comment("\n".join(lines))


def _clean_comment(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = line.strip()
        line = re.sub(r"^(///?!?|/\*\*?|\*/|\*|#)", "", line).strip()
        line = re.sub(r"\*/$", "", line).strip()
        out.append(line)
    return "\n".join(out).strip()[:2000]


def extract_symbols(root: Node, path: str, language: str) -> list[Symbol]:
    """Every definition under ``root``, in source order."""
    out: list[Symbol] = []
    _walk(root, path, language, parents=[], parent_kind="", out=out)
    return out


def _walk(node: Node, path: str, language: str, parents: list[str], parent_kind: str, out: list[Symbol]) -> None:
    for child in node.named_children:
        if child.type in NO_DESCEND:
            continue
        found = _classify(child, language, parent_kind)
        if found is None:
            if child.type in NO_DESCEND_UNLESS_DEF:
                continue
            # Python/JS wrappers and Go declaration lists keep the current scope.
            _walk(child, path, language, parents, parent_kind, out)
            continue
        kind, name = found
        qual = ".".join([*parents, name])
        if kind != "impl":
            doc = _python_docstring(child) if language == "python" else _leading_comment(child)
            out.append(Symbol(
                name=name, qualified_name=qual, kind=kind, signature=_signature(child, language),
                docstring=doc, path=path, language=language,
                start_line=child.start_point.row + 1, end_line=child.end_point.row + 1,
                parent=".".join(parents),
            ))
        if language == "go" and kind == "method":
            # Go methods live at top level; their receiver type is the parent.
            recv = child.child_by_field_name("receiver")
            rtype = re.sub(r"[^\w]", "", _text(recv).split()[-1]) if recv is not None and _text(recv).split() else ""
            if rtype:
                out[-1] = _with_parent(out[-1], rtype)
        _walk(child, path, language, [*parents, name], kind, out)


def _with_parent(sym: Symbol, parent: str) -> Symbol:
    from dataclasses import replace

    return replace(sym, parent=parent, qualified_name=f"{parent}.{sym.name}")
