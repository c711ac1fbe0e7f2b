"""Type-ahead cache: serve the rest of a suggestion while the user types through it."""

from __future__ import annotations

from mochi_ls.cache import SuggestionCache


def _cache_with(prefix: str = "def f():\n    ", suffix: str = "\n", text: str = "return 42") -> SuggestionCache:
    c = SuggestionCache()
    c.put(id="s1", uri="file:///a.py", prefix=prefix, suffix=suffix, text=text)
    return c


def test_typing_the_first_characters_of_a_suggestion_returns_the_rest():
    c = _cache_with()
    hit = c.lookup(uri="file:///a.py", prefix="def f():\n    ret", suffix="\n")
    assert hit is not None and hit.remaining == "urn 42" and hit.typed == "ret" and hit.entry.id == "s1"


def test_the_same_position_again_is_an_exact_hit():
    hit = _cache_with().lookup(uri="file:///a.py", prefix="def f():\n    ", suffix="\n")
    assert hit is not None and hit.remaining == "return 42"


def test_typing_something_else_or_editing_elsewhere_misses():
    c = _cache_with()
    assert c.lookup(uri="file:///a.py", prefix="def f():\n    x", suffix="\n") is None
    assert c.lookup(uri="file:///a.py", prefix="def g():\n    ret", suffix="\n") is None
    assert c.lookup(uri="file:///a.py", prefix="def f():\n    ret", suffix="\nprint(1)\n") is None
    assert c.lookup(uri="file:///b.py", prefix="def f():\n    ret", suffix="\n") is None
    assert c.misses == 4 and c.hits == 0


def test_typing_the_whole_suggestion_is_not_a_hit():
    assert _cache_with().lookup(uri="file:///a.py", prefix="def f():\n    return 42", suffix="\n") is None


def test_long_prefixes_compare_only_their_tail_and_still_detect_changes_near_the_cursor():
    head = "x = 1\n" * 2000
    c = _cache_with(prefix=head + "y = ", text="compute()")
    assert c.lookup(uri="file:///a.py", prefix=head + "y = com", suffix="\n").remaining == "pute()"
    assert c.lookup(uri="file:///a.py", prefix=head[:-2] + "2\ny = com", suffix="\n") is None


def test_invalidate_and_lru_limits():
    c = SuggestionCache(per_document=2, documents=2)
    for i in range(3):
        c.put(id=f"s{i}", uri="u1", prefix=f"p{i}", suffix="", text="abc")
    assert c.lookup(uri="u1", prefix="p0", suffix="") is None  # evicted: two per document
    assert c.lookup(uri="u1", prefix="p2a", suffix="").remaining == "bc"
    c.put(id="t", uri="u2", prefix="q", suffix="", text="xyz")
    c.put(id="v", uri="u3", prefix="r", suffix="", text="xyz")
    assert c.lookup(uri="u1", prefix="p2", suffix="") is None  # whole document evicted
    c.invalidate("u3")
    assert c.lookup(uri="u3", prefix="r", suffix="") is None
    assert c.put(id="e", uri="u4", prefix="", suffix="", text="") is None
