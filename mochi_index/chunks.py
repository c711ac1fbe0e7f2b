"""Syntax-aware retrieval chunks: a function or class with its signature, split when too large.

A file becomes a list of *pieces* (line ranges owned by one symbol, or by module-level code);
definitions larger than the token cap are opened up and their statements become pieces, so a
split always falls on a statement boundary. Adjacent pieces of the same owner are then packed
back together while they fit the cap. A single statement still over the cap is cut into line
windows (generated tables, long literals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mochi_index.symbols import COMMENT_TYPES, SKIP_OVER, _classify
from mochi_index.types import Chunk

if TYPE_CHECKING:
    from tree_sitter import Node

WRAPPERS = {"decorated_definition", "export_statement", "lexical_declaration", "variable_declaration",
            "type_declaration", "const_declaration"}
CHARS_PER_TOKEN = 4
LEADING = COMMENT_TYPES | SKIP_OVER


@dataclass
class _Piece:
    start: int  # 0-based row, inclusive
    end: int  # 0-based row, inclusive
    owner: str  # qualified name, "" for module-level code


class _Chunker:
    def __init__(self, lines: list[str], language: str, cap_tokens: int) -> None:
        self.lines = lines
        self.language = language
        self.cap_chars = max(16, cap_tokens) * CHARS_PER_TOKEN
        self.cum = [0]
        for line in lines:
            self.cum.append(self.cum[-1] + len(line) + 1)

    def size(self, start: int, end: int) -> int:
        end = min(end, len(self.lines) - 1)
        return self.cum[end + 1] - self.cum[start] if end >= start else 0

    def definition(self, node: Node, parent_kind: str) -> tuple[Node, str, str] | None:
        """(def node, kind, name) when ``node`` is, or wraps, a definition."""
        found = _classify(node, self.language, parent_kind)
        if found:
            return node, found[0], found[1]
        if node.type in WRAPPERS:
            if node.type in ("lexical_declaration", "variable_declaration") and node.named_child_count > 1:
                return None  # `var a = 1, f = () => {}`: a statement, not one definition
            for child in node.named_children:
                inner = self.definition(child, parent_kind)
                if inner:
                    return inner
        return None

    def pieces(self, node: Node, owner: str, kind: str, start: int) -> list[_Piece]:
        end = node.end_point.row
        if owner and self.size(start, end) <= self.cap_chars:
            return [_Piece(start, end, owner)]
        body = node.child_by_field_name("body") or node
        children = body.named_children
        if not children:
            return self.windows(start, end, owner)
        out: list[_Piece] = []
        first = children[0].start_point.row
        if first > start:  # the signature and decorators (the file's leading comments for the root)
            out.append(_Piece(start, first - 1, owner))
        lead: list[Node] = []  # comments/attributes waiting to see whether a definition follows
        for child in children:
            if child.type in LEADING:
                if lead and lead[-1].end_point.row < child.start_point.row - 1:
                    out += [_Piece(n.start_point.row, n.end_point.row, owner) for n in lead]
                    lead = []
                lead.append(child)
                continue
            found = self.definition(child, kind)
            start = child.start_point.row
            if found and lead and lead[-1].end_point.row >= start - 1:
                start = lead[0].start_point.row  # a definition keeps its doc comment and attributes
            else:
                out += [_Piece(n.start_point.row, n.end_point.row, owner) for n in lead]
            lead = []
            if found:
                def_node, child_kind, name = found
                qual = f"{owner}.{name}" if owner else name
                out += self.pieces(def_node, qual, child_kind, start)
            elif self.size(child.start_point.row, child.end_point.row) <= self.cap_chars:
                out.append(_Piece(child.start_point.row, child.end_point.row, owner))
            elif child.named_child_count:
                out += self.pieces(child, owner, kind, child.start_point.row)
            else:
                out += self.windows(child.start_point.row, child.end_point.row, owner)
        out += [_Piece(n.start_point.row, n.end_point.row, owner) for n in lead]
        last = children[-1].end_point.row
        if node.end_point.row > last:  # closing braces after the last statement
            out.append(_Piece(last + 1, node.end_point.row, owner))
        return out

    def windows(self, start: int, end: int, owner: str) -> list[_Piece]:
        out: list[_Piece] = []
        row = start
        while row <= end:
            stop = row
            while stop < end and self.size(row, stop + 1) <= self.cap_chars:
                stop += 1
            out.append(_Piece(row, stop, owner))
            row = stop + 1
        return out

    def pack(self, pieces: list[_Piece]) -> list[_Piece]:
        pieces = sorted(pieces, key=lambda p: (p.start, p.end))
        out: list[_Piece] = []
        for p in pieces:
            if out and p.start <= out[-1].end:  # overlapping pieces (a rare grammar shape)
                if p.end > out[-1].end and p.owner == out[-1].owner:
                    out[-1].end = p.end
                    continue
                if p.end <= out[-1].end:
                    continue
                p = _Piece(out[-1].end + 1, p.end, p.owner)
            prev = out[-1] if out else None
            if (prev is not None and prev.owner == p.owner
                    and self.size(prev.start, p.end) <= self.cap_chars):
                prev.end = p.end
            else:
                out.append(_Piece(p.start, p.end, p.owner))
        return out


def make_chunks(root: Node, text: str, path: str, language: str, cap_tokens: int) -> list[Chunk]:
    """Chunks covering the code of one parsed file (blank-only chunks dropped)."""
    lines = text.split("\n")
    chunker = _Chunker(lines, language, cap_tokens)
    packed = chunker.pack(chunker.pieces(root, "", "", 0))
    out: list[Chunk] = []
    for p in packed:
        body = "\n".join(lines[p.start: p.end + 1])
        if not body.strip():
            continue
        out.append(Chunk(id=f"{path}:{p.start + 1}-{p.end + 1}", path=path, language=language,
                         start_line=p.start + 1, end_line=p.end + 1, text=body, symbol=p.owner))
    return out
