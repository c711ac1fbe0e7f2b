"""Check generated code against the index: calls to project symbols that do not exist.

A call is *unknown* when the generated code calls a name that it does not define or import from a
third-party module, that is not a builtin of the language, that does not appear in the context the
model was given, and that the index has no definition for. ``Cls.method(...)`` is checked too when
``Cls`` is a project class. Calls on other objects (``np.array``, ``self.x``) cannot be resolved
without types and are left alone: the check prefers missing a hallucination to flagging real code.
"""

from __future__ import annotations

import builtins
import keyword
import re
from typing import Any

_CALL = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_ATTR_CALL = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_STRING = re.compile(r"(\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|`[^`]*`)")
_LINE_COMMENT = re.compile(r"(#|//)[^\n]*")

_DEFINES: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)|^\s*([A-Za-z_]\w*)\s*(?::[^=\n]*)?=", re.M),
    "default": re.compile(
        r"(?:function|func|fn|class|interface|struct|enum|type|const|let|var)\s+\*?\s*([A-Za-z_]\w*)"
        r"|(?:\)\s*)([A-Za-z_]\w*)\s*\("  # Go methods: func (r *T) Name(
        r"|([A-Za-z_]\w*)\s*:?=",
        re.M,
    ),
}
_PY_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+)?import\s+([^\n]+)", re.M)

_KEYWORDS: dict[str, frozenset[str]] = {
    "python": frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"print", "super", "self", "cls"},
    "default": frozenset(
        "if for while switch return catch function typeof new await async sizeof func make len cap append "
        "panic recover print println printf delete copy close new match loop fn Some Ok Err Box Vec String "
        "format println! vec! assert super this require import export console parseInt parseFloat String "
        "Number Boolean Array Object Promise Error Map Set JSON Math Date setTimeout clearTimeout".split()
    ),
}


def _strip_strings_and_comments(code: str) -> str:
    return _LINE_COMMENT.sub("", _STRING.sub('""', code))


def locally_defined(code: str, language: str) -> set[str]:
    """Names the generated code defines, assigns or imports itself."""
    pat = _DEFINES.get(language, _DEFINES["default"])
    names = {n for m in pat.finditer(code) for n in m.groups() if n}
    if language == "python":
        for m in _PY_IMPORT.finditer(code):
            for part in m.group(2).replace("(", " ").replace(")", " ").split(","):
                bits = part.split()
                if bits:
                    names.add(bits[-1] if "as" in bits else bits[0].split(".")[0])
        # parameters of functions and lambdas, and loop/with/except targets
        for m in re.finditer(r"def\s+\w+\s*\(([^)]*)\)", code):
            names.update(re.findall(r"([A-Za-z_]\w*)\s*(?:[:=,]|$)", m.group(1)))
        names.update(re.findall(r"(?:for|as)\s+([A-Za-z_]\w*)", code))
    return names


def calls(code: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Bare calls ``name(`` and capitalised attribute calls ``Cls.name(`` in ``code``."""
    clean = _strip_strings_and_comments(code)
    bare = list(dict.fromkeys(_CALL.findall(clean)))
    attr = list(dict.fromkeys(_ATTR_CALL.findall(clean)))
    return bare, attr


def unknown_calls(code: str, *, language: str, index: Any, known_text: str = "",
                  project_modules: frozenset[str] = frozenset()) -> list[str]:
    """Project-looking calls in ``code`` that the index cannot resolve, in order of appearance.

    Args:
        code: the generated code.
        language: its language (``python`` gets the precise builtin list).
        index: the project index (``definitions(names)`` is used).
        known_text: the prompt context; names appearing there count as known.
        project_modules: top-level module names of the project; names imported from them are checked.
    """
    lang = language if language in _KEYWORDS else "default"
    skip = _KEYWORDS[lang] | locally_defined(code, language)
    imported_from_project = _project_imports(code, project_modules) if language == "python" else set()
    known_words = set(re.findall(r"[A-Za-z_]\w*", known_text))
    bare, attr = calls(code)
    candidates = [n for n in bare if (n not in skip or n in imported_from_project) and n not in known_words]
    attr_candidates = [f"{c}.{m}" for c, m in attr if f"{c}.{m}" not in known_text]
    if not candidates and not attr_candidates:
        return []
    found = {s.name for s in index.definitions(candidates, limit=len(candidates) * 4 + 10)} if candidates else set()
    unknown = [n for n in candidates if n not in found]
    if attr_candidates:
        classes = {c for c, _ in attr}
        project_classes = {s.name for s in index.definitions(sorted(classes), limit=50)}
        wanted = [q for q in attr_candidates if q.split(".")[0] in project_classes]
        if wanted:
            hits = index.definitions(wanted, limit=len(wanted) * 4 + 10)
            have = {s.qualified_name for s in hits} | {f"{s.parent}.{s.name}" for s in hits if s.parent}
            unknown += [q for q in wanted if q not in have]
    return unknown


def _project_imports(code: str, project_modules: frozenset[str]) -> set[str]:
    out: set[str] = set()
    for m in _PY_IMPORT.finditer(code):
        module = (m.group(1) or "").lstrip(".")
        if m.group(1) and (m.group(1).startswith(".") or module.split(".")[0] in project_modules):
            for part in m.group(2).replace("(", " ").replace(")", " ").split(","):
                bits = part.split()
                if bits:
                    out.add(bits[-1] if "as" in bits else bits[0])
    return out
