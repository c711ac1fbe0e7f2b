"""FIM prompt rendering for training and eval, delegated to the engine's ``mochi_model.fim``.

Training (`mochi prepare`) and evaluation (`mochi eval`) render prompts through the same
``build_prompt`` the engine uses at completion time and, by default, its snippet layout
(``mochi_model.fim.DEFAULT_CONTEXT_FORMAT``), so the adapter is trained on exactly the layout it is
later asked with. Two ways to show cross-file context (``style``):

* ``comment`` — each snippet as a commented block above the prefix;
* ``repo`` — the model's native repo-level layout when it has one (Qwen2.5-Coder:
  ``<|repo_name|>name\\n<|file_sep|>path\\ncode...<|file_sep|>current\\n<|fim_prefix|>...``).
"""

from __future__ import annotations

from collections.abc import Sequence

from mochi_model.fim import DEFAULT_CONTEXT_FORMAT, FIM_FORMATS, FimFormat, build_prompt
from mochi_model.types import Snippet

CONTEXT_STYLES = ("comment", "repo")


def get_format(name: str) -> FimFormat:
    """Look up a FIM format by family name (``qwen``, ``starcoder2``, ``deepseek``, ``codellama``, ...).

    Raises:
        KeyError: with the known names, when ``name`` is unknown.
    """
    try:
        return FIM_FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown FIM format {name!r} (known: {', '.join(FIM_FORMATS)})") from None


def eos_of(fmt: FimFormat) -> str:
    """The token that ends a completion in this family (appended to training targets)."""
    return fmt.stop_tokens[0] if fmt.stop_tokens else ""


def render_prompt(
    fmt: FimFormat,
    prefix: str,
    suffix: str,
    snippets: Sequence[Snippet] = (),
    *,
    path: str = "",
    language: str = "",
    style: str = DEFAULT_CONTEXT_FORMAT,
    repo: str = "",
) -> str:
    """Render a fill-in-the-middle prompt with optional cross-file context.

    Args:
        fmt: the model family's tokens.
        prefix: code before the cursor (already budgeted).
        suffix: code after the cursor.
        snippets: retrieved project context, most relevant last (closest to the hole).
        path: project-relative path of the current file (shown in the repo layout).
        language: language id (picks the comment marker).
        style: ``comment`` (the layout completions use, the default) or ``repo`` (native layout,
            ``comment`` when the family has none).
        repo: repository name for the repo-level header.
    """
    if style not in CONTEXT_STYLES:
        raise ValueError(f"context style must be one of {CONTEXT_STYLES}, got {style!r}")
    return build_prompt(fmt, prefix, suffix, snippets, path=path, language=language, context_format=style,
                        repo_name=repo)
