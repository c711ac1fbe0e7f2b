"""Fill-in-the-middle prompt formats and how retrieved snippets are laid out before the hole.

Formats: Qwen2.5-Coder / Qwen3-Coder, StarCoder2, DeepSeek-Coder, CodeLlama, Codestral. The format
of a loaded model is detected from its tokenizer's special tokens (:func:`detect_fim_format`); a
model with none falls back to prefix-only completion (a warning is logged once).

Layout for KV reuse: what changes while the user types should sit as late as possible in the
prompt. Snippets come first (they change rarely), then the prefix (its tail changes every
keystroke). PSM formats must put the suffix after the prefix, so a keystroke re-prefills the suffix
too; that is why the suffix window is kept short. Codestral is SPM (suffix first), the ideal layout.

Snippet layouts (``context_format``):
  * ``comment``: each snippet as comment lines (``# file: path``) at the top of the prefix;
  * ``repo``: the repository-level format of models trained on it (Qwen: ``<|repo_name|>``,
    ``<|file_sep|>``; StarCoder2: ``<repo_name>``, ``<file_sep>``); others fall back to ``comment``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mochi_model.types import Snippet

logger = logging.getLogger(__name__)

#: The snippet layout completions are asked with. Training data (`mochi prepare`) defaults to the same,
#: so an adapter learns the prompt it will see; before session 14 prepare used ``repo`` while every
#: completion used ``comment``.
DEFAULT_CONTEXT_FORMAT = "comment"


@dataclass(frozen=True)
class FimFormat:
    name: str
    prefix: str
    suffix: str
    middle: str
    order: str = "psm"  # psm: prefix, suffix, middle | spm: suffix, prefix (Codestral)
    bos: str = ""
    stop_tokens: tuple[str, ...] = ()
    repo_name: str = ""  # repo-level context tokens ("" = not supported)
    file_sep: str = ""

    def wrap(self, prefix: str, suffix: str) -> str:
        """The FIM prompt for ``prefix``/``suffix`` (snippets already folded into ``prefix``)."""
        if self.order == "spm":
            return f"{self.bos}{self.suffix}{suffix}{self.prefix}{prefix}{self.middle}"
        return f"{self.bos}{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"


FIM_FORMATS: dict[str, FimFormat] = {
    "qwen": FimFormat("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                      stop_tokens=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|im_end|>",
                                   "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
                      repo_name="<|repo_name|>", file_sep="<|file_sep|>"),
    "starcoder2": FimFormat("starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
                            stop_tokens=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_pad>"),
                            repo_name="<repo_name>", file_sep="<file_sep>"),
    "deepseek": FimFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
                          stop_tokens=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>")),
    # CodeLlama's tokens carry a leading space: "<PRE> {prefix} <SUF>{suffix} <MID>".
    "codellama": FimFormat("codellama", "<PRE> ", " <SUF>", " <MID>", stop_tokens=("<EOT>", "</s>")),
    "codestral": FimFormat("codestral", "[PREFIX]", "[SUFFIX]", "", order="spm", bos="<s>",
                           stop_tokens=("</s>",)),
}

# Which special tokens identify each format in a tokenizer's vocabulary (first match wins).
_SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("qwen", ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")),
    ("starcoder2", ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")),
    ("deepseek", ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")),
    ("codellama", ("▁<PRE>", "▁<SUF>", "▁<MID>")),
    ("codellama", ("<PRE>", "<SUF>", "<MID>")),
    ("codestral", ("[SUFFIX]", "[PREFIX]")),
]

_COMMENT = {"python": "#", "ruby": "#", "shell": "#", "bash": "#", "yaml": "#", "toml": "#", "r": "#",
            "lua": "--", "sql": "--", "haskell": "--"}


def comment_marker(language: str, path: str = "") -> str:
    lang = language.lower()
    if not lang and path.endswith((".py", ".rb", ".sh", ".toml", ".yaml", ".yml")):
        return "#"
    return _COMMENT.get(lang, "//" if lang or path else "#")


def detect_fim_format(vocab: Iterable[str]) -> FimFormat | None:
    """The FIM format whose special tokens the vocabulary has, or None (prefix-only)."""
    have = set(vocab)
    for name, tokens in _SIGNATURES:
        if all(t in have for t in tokens):
            return FIM_FORMATS[name]
    return None


def get_fim_format(name: str | None) -> FimFormat | None:
    """Look up a format by name (``none``/``""`` → prefix-only)."""
    if not name or name in ("none", "prefix"):
        return None
    try:
        return FIM_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown FIM format {name!r}; known: {', '.join(FIM_FORMATS)}") from None


def snippets_as_comments(snippets: Sequence[Snippet], language: str = "", path: str = "") -> str:
    """Snippets as a comment block placed before the prefix."""
    if not snippets:
        return ""
    mark = comment_marker(language, path)
    parts = []
    for s in snippets:
        body = "\n".join(f"{mark} {line}".rstrip() for line in s.text.rstrip("\n").splitlines())
        parts.append(f"{mark} file: {s.path}\n{body}\n")
    return "".join(parts) + "\n"


def build_prompt(fmt: FimFormat | None, prefix: str, suffix: str, snippets: Sequence[Snippet] = (), *,
                 path: str = "", language: str = "", context_format: str = DEFAULT_CONTEXT_FORMAT,
                 repo_name: str = "") -> str:
    """The full completion prompt: snippets first, then the FIM-wrapped prefix/suffix.

    Args:
        fmt: the model's FIM format; None = prefix-only (the suffix is dropped).
        context_format: ``comment`` or ``repo`` (repo-level tokens when ``fmt`` has them).
        repo_name: shown after ``<|repo_name|>`` in the ``repo`` layout.
    """
    if fmt is not None and context_format == "repo" and fmt.repo_name:
        head = f"{fmt.repo_name}{repo_name or 'project'}\n"
        for s in snippets:
            head += f"{fmt.file_sep}{s.path}\n{s.text.rstrip()}\n"
        head += f"{fmt.file_sep}{path or 'current_file'}\n"
        body = fmt.wrap(prefix, suffix)
        # The repo header goes before the FIM prefix token so it is part of the cached prefix.
        return head + body if not fmt.bos else fmt.bos + head + body[len(fmt.bos):]
    text = snippets_as_comments(snippets, language, path) + prefix
    if fmt is None:
        return text
    return fmt.wrap(text, suffix)


def stop_token_strings(fmt: FimFormat | None) -> tuple[str, ...]:
    return fmt.stop_tokens if fmt is not None else ()
