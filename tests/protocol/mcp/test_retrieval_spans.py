"""Source labels of retrieved definitions span the lines the prompt shows, found in the file."""

from __future__ import annotations

from types import SimpleNamespace

from mochi_model.retrieval import shown_span

PY = '''class Store:
    @property
    def load(
        self,
        path: str,
    ) -> dict:
        """Read the store.

        Many words.
        """
        data = {}
        return data

    def size(self): return 1
'''
TS = '''import x from "y";

/**
 * Sum of a cart.
 */
@memo()
export function total(lines: Line[]): number {
  return 0;
}
'''


def _sym(**kw: object) -> SimpleNamespace:
    return SimpleNamespace(**{"docstring": "", "language": "python", **kw})


def test_a_multi_line_signature_and_its_docstring_are_the_span_not_the_whole_body() -> None:
    sym = _sym(signature="def load( self, path: str, ) -> dict:", docstring="Read the store.\n\nMany words.",
               start_line=3, end_line=12)
    assert shown_span(PY.splitlines(), sym) == (3, 10)


def test_a_one_line_definition_without_docstring_spans_one_line() -> None:
    sym = _sym(signature="def size(self):", start_line=14, end_line=14)
    assert shown_span(PY.splitlines(), sym) == (14, 14)


def test_a_leading_doc_comment_above_decorators_starts_the_span() -> None:
    sym = _sym(signature="export function total(lines: Line[]): number", docstring="Sum of a cart.",
               language="typescript", start_line=7, end_line=9)
    assert shown_span(TS.splitlines(), sym) == (3, 7)


def test_a_file_edited_since_indexing_or_unreadable_falls_back_to_the_first_line() -> None:
    sym = _sym(signature="def load(self, path: str) -> dict:", start_line=1, end_line=12)
    assert shown_span(PY.splitlines(), sym) == (1, 1)
    assert shown_span(None, sym) == (1, 1)
