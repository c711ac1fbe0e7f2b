"""Retrieval ingredients: imports resolved to project files, module skeletons, ranking, the config switch."""

from __future__ import annotations

from mochi_core.config import CompletionSection
from mochi_index import ProjectIndex
from mochi_model.context import build_fim_request, retrieve_snippets
from mochi_model.data.local_index import LocalIndex
from mochi_model.retrieval import Candidate, enclosing_signatures, pack, parse_imports

FILES = {
    "pkg/__init__.py": "",
    "pkg/models.py": "class Order:\n    total: int\n    def refund(self, amount: int) -> None:\n        pass\n",
    "other/models.py": "class Order:\n    legacy_field: str\n",
    "pkg/util/_text.py": "def slugify(name: str) -> str:\n    return name\n\n\ndef shout(s: str) -> str:\n    return s\n",
    "pkg/app.py": "",
}


def test_python_imports_resolve_absolute_relative_and_submodule_forms():
    text = "from pkg.models import Order as O\nfrom .util import _text\nimport pkg.util._text as t\n"
    mods = {m.module: m for m in parse_imports(text, "pkg/app.py", "python")}
    assert mods["pkg.models"].suffixes[0] == "pkg/models.py" and mods["pkg.models"].names == (("Order", "O"),)
    assert mods[".util._text"].suffixes[0] == "pkg/util/_text.py" and mods[".util._text"].alias == "_text"
    assert mods["pkg.util._text"].alias == "t"


def test_javascript_relative_imports_resolve_with_extensions():
    mods = parse_imports("import { a, b as c } from './lib/x';\nimport * as ns from '../y';\n", "src/app.ts",
                         "typescript")
    assert "src/lib/x.ts" in mods[0].suffixes and mods[0].names == (("a", "a"), ("b", "c"))
    assert "y.ts" in mods[1].suffixes and mods[1].alias == "ns"


def test_an_imported_class_comes_from_the_file_it_is_imported_from():
    index = LocalIndex(FILES)
    before = "from pkg.models import Order\n\n\ndef f(o):\n    "
    snips = retrieve_snippets(index, before, path="pkg/app.py", language="python", ingredients=("imports",))
    assert [s.path for s in snips] == ["pkg/models.py"]
    assert "def refund(self, amount: int) -> None:" in snips[0].text and "legacy_field" not in snips[0].text


def test_a_namespace_import_brings_the_module_skeleton_first():
    index = LocalIndex(FILES)
    before = "from pkg.util import _text\nfrom pkg.models import Order\n\nx = Order()\n"
    snips = retrieve_snippets(index, before, path="pkg/app.py", language="python", budget=30,
                              ingredients=("imports",))
    assert [s.path for s in snips] == ["pkg/util/_text.py"]  # the budget holds one piece: the skeleton wins
    assert "def slugify(name: str) -> str:" in snips[0].text and "def shout(s: str) -> str:" in snips[0].text


def test_enclosing_signatures_give_the_parameter_annotations_innermost_first():
    before = "class Shop(Base):\n    def sell(self, order: Order, n: int):\n        x = 1\n        "
    assert enclosing_signatures(before) == ["    def sell(self, order: Order, n: int):", "class Shop(Base):"]


def test_the_config_switches_ingredients_off_on_a_real_index(tmp_path):
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    try:
        doc = "from pkg.util import _text\n\n\ndef f():\n    return _text."
        on = build_fim_request(doc, len(doc), path="pkg/app.py", language="python", index=idx)
        assert any("def slugify" in s.text for s in on.snippets)
        off = build_fim_request(doc, len(doc), path="pkg/app.py", language="python", index=idx,
                                config=CompletionSection(retrieval=["definitions"]))
        assert not any("def slugify" in s.text for s in off.snippets)
    finally:
        idx.close()


def test_a_similar_chunk_comes_with_the_lines_after_it(tmp_path, monkeypatch):
    # make_tools is the code most like the cursor's; what follows it in its file (get_tool) is what
    # the next line after make_prompts most likely repeats.
    tools = ("def make_tools(warn_on_duplicate_tools: bool = True) -> dict[str, Tool]:\n"
             "    registry: dict[str, Tool] = {}\n    registry.warn_on_duplicate_tools = warn_on_duplicate_tools\n"
             "    return registry\n\n\ndef get_tool(name: str) -> Tool | None:\n    return None\n")
    (tmp_path / "tools.py").write_text(tools)
    (tmp_path / "prompts.py").write_text("")
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    try:
        before = ("def make_prompts(warn_on_duplicate_prompts: bool = True) -> dict[str, Prompt]:\n"
                  "    registry: dict[str, Prompt] = {}\n"
                  "    registry.warn_on_duplicate_prompts = warn_on_duplicate_prompts\n    return registry\n\n\n")
        snips = retrieve_snippets(idx, before, path="prompts.py", language="python", ingredients=("similar",),
                                  similar=1)
        assert [s.path for s in snips] == ["tools.py"]
        assert snips[0].text.startswith("def make_tools(")
        assert "def get_tool(name: str) -> Tool | None:" in snips[0].text
        # when the next chunk is retrieved as well, it is shown once
        both = retrieve_snippets(idx, before, path="prompts.py", language="python", ingredients=("similar",),
                                 similar=2)
        assert both[0].text.count("def get_tool") == 1
        monkeypatch.setattr("mochi_model.retrieval.FOLLOW_LINES", 0)
        alone = retrieve_snippets(idx, before, path="prompts.py", language="python", ingredients=("similar",),
                                  similar=1)
        assert "get_tool" not in alone[0].text
    finally:
        idx.close()


def test_a_continuation_only_takes_budget_nothing_else_wanted():
    def words(text: str) -> int:
        return len(text.split())

    a = Candidate(path="a.py", text="def make_tools(): pass", kind="similar", rank=10, key="a.py:1")
    tail = Candidate(path="a.py", text="def get_tool(name): pass", kind="similar", rank=-1e9, key="a.py:1:after",
                     follows="a.py:1")
    b = Candidate(path="b.py", text="x = registry()", kind="definition", rank=5, key="b.py:x")
    tight = pack([tail, b, a], budget=18, count=words)  # a (7) + b (6) fit, the tail (7) does not
    assert [(s.path, s.text) for s in tight] == [("b.py", "x = registry()"), ("a.py", "def make_tools(): pass")]
    roomy = pack([tail, b, a], budget=100, count=words)
    assert roomy[-1].text == "def make_tools(): pass\ndef get_tool(name): pass"
    assert pack([tail], budget=100, count=words) == []  # never without the chunk it continues


def test_receiver_types_come_from_annotations_constructors_and_the_parameter_assigned():
    from mochi_model.retrieval import receiver_types

    before = ("class Handler:\n"
              "    def __init__(self, provider: AuthProvider, store=None):\n"
              "        self.provider = provider\n"
              "        self._cache: Optional[pkg.ResultCache] = None\n"
              "        self.session = ClientSession(read, write)\n"
              "        self.count = compute()\n\n"
              "    async def handle(self, scope):\n"
              "        conn = HTTPConnection(scope)\n"
              "        client = await self.provider.get_client(conn.headers)\n"
              "        self._cache.put(client)\n"
              "        self.session.send(self.count.real, os.sep)\n")
    assert receiver_types(before) == {"ClientSession": "self.session", "ResultCache": "self._cache",
                                      "AuthProvider": "self.provider", "HTTPConnection": "conn"}
    assert receiver_types("x = 1\ny.z\n") == {}


def test_the_class_of_an_object_used_near_the_cursor_is_retrieved_with_its_methods():
    files = {**FILES, "pkg/provider.py": "class AuthProvider:\n    async def get_client(self, cid: str) -> str:\n"
                                         "        return cid\n"}
    index = LocalIndex(files)
    before = ("class Handler:\n    def __init__(self, provider):\n        self.provider: AuthProvider = provider\n"
              + "        x = 1\n" * 20
              + "    async def handle(self, cid):\n        self.provider.check()\n        ")
    snips = retrieve_snippets(index, before, path="pkg/app.py", language="python", ingredients=("definitions",))
    assert any(s.path == "pkg/provider.py" and "async def get_client(self, cid: str)" in s.text for s in snips)
    # the type is named 21 lines up, outside the lines whose names are looked up: without the
    # receiver's type nothing would bring the class
    assert retrieve_snippets(index, before.replace("self.provider.check()", "pass"), path="pkg/app.py",
                             language="python", ingredients=("definitions",)) == []


def test_symbols_in_matches_whole_path_segments_as_the_lancedb_index_does(tmp_path):
    files = {"a/b/c.py": "def one():\n    pass\n", "x/c.py": "def two():\n    pass\n",
             "abc.py": "def three():\n    pass\n", "b/c.py": "class Four:\n    def m(self):\n        pass\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    local = LocalIndex(files)
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    try:
        for query in (["c.py"], ["b/c.py"], ["a/b/c.py", "abc.py"], [""], ["/c.py"], ["bc.py"], ["c.py", "c.py"]):
            got = [(s.path, s.name) for s in local.symbols_in(query)]
            assert got == sorted(got, key=lambda t: t[0]), query  # in file order
            assert {p for p, _ in got} == {s.path for s in idx.symbols_in(query)}, query
        assert {s.path for s in local.symbols_in(["c.py"])} == {"a/b/c.py", "x/c.py", "b/c.py"}  # not abc.py
        assert [s.name for s in local.symbols_in(["b/c.py"], limit=2)] == ["one", "Four"]
    finally:
        idx.close()
