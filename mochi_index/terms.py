"""Search terms of code for the full-text index: the code itself plus camelCase parts.

LanceDB's ``simple`` tokenizer already splits on everything that is not a letter or digit
(``load_config`` → ``load``, ``config``) and lowercases, but it keeps ``loadConfig`` whole. So the
indexed terms are the text followed by the parts of each distinct camel/Pascal-case identifier
(``loadConfig`` → ``load Config``), and a query in either style, or in plain words, meets both.
Queries go through the same function, which keeps indexing and querying symmetric.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mochi_index.types import Chunk

_CAMEL = re.compile(r"\b[A-Za-z_]\w*?[a-z0-9][A-Z]\w*")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def camel_parts(text: str) -> list[str]:
    """The parts of every distinct camelCase identifier in ``text``."""
    out: list[str] = []
    for ident in set(_CAMEL.findall(text)):
        out.extend(_PARTS.findall(ident))
    return out


def terms(text: str) -> str:
    """``text`` plus the camelCase parts of its identifiers (what the FTS index sees)."""
    parts = camel_parts(text)
    return f"{text}\n{' '.join(parts)}" if parts else text


def chunk_terms(chunk: Chunk) -> str:
    """Terms of a chunk: its owner's qualified name (once more, so the name weighs) plus its text."""
    owner = chunk.symbol.replace(".", " ")
    return f"{owner} {camel_parts_text(owner)}\n{terms(chunk.text)}" if owner else terms(chunk.text)


def camel_parts_text(text: str) -> str:
    return " ".join(camel_parts(text))
