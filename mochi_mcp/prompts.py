"""Prompt templates for the instruction-style tools, and reading code back out of an answer.

The templates keep the project's code first and the task last (small models follow the most
recent instruction best) and always ask for exactly one fenced code block, which
:func:`extract_code` reads back; an answer without fences is taken whole.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:\n```|$)", re.S)


def extract_code(answer: str) -> str:
    """The code of the longest fenced block in ``answer``; the answer itself when it has none."""
    blocks = [b for b in _FENCE.findall(answer) if b.strip()]
    if blocks:
        return max(blocks, key=len).rstrip("\n") + "\n"
    text = answer.strip("\n")
    return text + "\n" if text else ""


def fence_language(language: str) -> str:
    return language or ""


def domain_query_prompt(*, project: str, instruction: str, language: str, context_code: str,
                        user_context: str = "", file_path: str = "", file_text: str = "",
                        allowed: list[str] | None = None, forbidden: list[str] | None = None) -> str:
    """Prompt for project-specific code generation."""
    lang = fence_language(language)
    parts = [
        f"You write code for the project `{project}`. Follow the project's own conventions and call "
        "only functions, classes and methods that exist in the project code below, in the file being "
        "edited, or in the language's standard library.",
    ]
    if context_code:
        parts.append(f"Project code:\n```{lang}\n{context_code}\n```")
    if file_text:
        parts.append(f"The file being edited, `{file_path}`:\n```{lang}\n{file_text.rstrip()}\n```")
    if user_context:
        parts.append(f"Context from the user:\n```{lang}\n{user_context.rstrip()}\n```")
    if allowed:
        parts.append("Project symbols you may call: " + ", ".join(allowed[:60]) + ".")
    if forbidden:
        parts.append("These do NOT exist in the project; do not call them: " + ", ".join(forbidden) + ".")
    parts.append(f"Task: {instruction.strip()}")
    parts.append(f"Answer with the code only, in one ```{lang} fenced block.")
    return "\n\n".join(parts)


def rewrite_prompt(*, instruction: str, language: str, path: str, original: str,
                   definitions: list[str] | None = None) -> str:
    """Prompt asking for the complete updated text of a file or region (for ``generate_diff``)."""
    lang = fence_language(language)
    name = f"`{path}`" if path else "the code"
    parts = [f"Here is {name}:\n```{lang}\n{original.rstrip()}\n```"]
    if definitions:
        parts.append("Project definitions you may use: " + "; ".join(definitions) + ".")
    parts.append(f"Change it as follows: {instruction.strip()}")
    parts.append(
        "Reply with the COMPLETE updated code in one fenced block: every line, changed or not, in the "
        "original order. Keep everything the change does not touch exactly as it was."
    )
    return "\n\n".join(parts)


def pattern_example_prompt(*, project: str, goal: str, language: str, patterns_text: str) -> str:
    """Prompt for a short example that follows the project's patterns."""
    lang = fence_language(language)
    return "\n\n".join([
        f"The project `{project}` uses these conventions (count = how often they appear):\n{patterns_text}",
        f"Goal: {goal.strip()}",
        f"Write a short example (at most 15 lines) of {language or 'project'} code that reaches the goal "
        f"while following those conventions. Answer with the code only, in one ```{lang} fenced block.",
    ])


def looks_like_diff(text: str) -> bool:
    """True when a model answered with a unified diff instead of the rewritten code."""
    lines = text.lstrip().splitlines()
    return bool(lines) and (lines[0].startswith(("--- ", "diff --git")) or lines[0].startswith("@@ "))
