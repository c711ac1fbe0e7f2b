"""Training samples from one file: FIM spans, next-line, multi-line spans and instructions.

A sample is ``prompt`` + ``completion``; training puts loss on the completion only. Prompts are
rendered with :func:`mochi_model.data.formats.render_prompt` from the same windows and retrieval
as live completion (:func:`mochi_model.context.build_fim_request`), so the adapter learns the
exact layout it is later asked with, cross-file context included.

JSONL schema (one object per line)::

    {"kind": "fim"|"next_line"|"span"|"instruct"|"file", "path": str, "prompt": str, "completion": str}

``file`` samples are plain chunks of a file after the repo-level header (loss on every code
token): far more signal per training FLOP than a one-line FIM hole, which matters on a CPU.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from mochi_core.config import CompletionSection
from mochi_model.context import build_fim_request
from mochi_model.data.formats import FimFormat, eos_of, render_prompt
from mochi_model.fim import DEFAULT_CONTEXT_FORMAT

KINDS = ("fim", "next_line", "span", "instruct", "file")


@dataclass(frozen=True, kw_only=True)
class Sample:
    kind: str
    path: str
    prompt: str
    completion: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(kw_only=True)
class SampleOptions:
    """How many samples of each kind one file yields (per 100 lines) and the prompt budgets."""

    next_line_per_100: float = 8.0
    fim_per_100: float = 4.0
    span_per_100: float = 1.5
    instruct_share: float = 0.05  # of functions with docstrings
    file_chunk_chars: int = 0  # > 0: also emit whole-file chunks of about this size ("file" samples)
    max_span_lines: int = 8
    style: str = DEFAULT_CONTEXT_FORMAT
    repo: str = "project"
    budgets: CompletionSection | None = None


def is_completable_line(line: str) -> bool:
    """Lines worth predicting: code, not blank, not a lone bracket or a comment."""
    s = line.strip()
    return bool(s) and not s.startswith(("#", "//")) and len(s) > 3 and not re.fullmatch(r"[\]\)\}\s,:;]+", s)


def next_line_hole(text: str, line_no: int) -> tuple[int, int]:
    """(cursor, end) offsets of the hole on 0-based ``line_no``: after indentation to line end."""
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    start = starts[line_no]
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    line = text[start:end]
    return start + len(line) - len(line.lstrip()), end


def _render(fmt: FimFormat, text: str, cursor: int, end: int, path: str, index: Any,
            opts: SampleOptions, language: str) -> str:
    req = build_fim_request(text[:cursor] + text[end:], cursor, path=path, language=language, index=index,
                            config=opts.budgets)
    return render_prompt(fmt, req.prefix, req.suffix, req.snippets, path=path, language=language,
                         style=opts.style, repo=opts.repo)


def file_samples(
    path: str,
    text: str,
    fmt: FimFormat,
    *,
    rng: random.Random,
    index: Any = None,
    options: SampleOptions | None = None,
    language: str = "python",
) -> list[Sample]:
    """All samples for one file (deterministic for a given ``rng`` state)."""
    opts = options or SampleOptions()
    lines = text.split("\n")
    candidates = [i for i, ln in enumerate(lines) if is_completable_line(ln)]
    if not candidates:
        return []
    out: list[Sample] = []
    n_lines = len(lines)

    def count(rate: float) -> int:
        x = rate * n_lines / 100
        return int(x) + (1 if rng.random() < x - int(x) else 0)

    for i in sorted(rng.sample(candidates, min(len(candidates), count(opts.next_line_per_100)))):
        cursor, end = next_line_hole(text, i)
        out.append(Sample(kind="next_line", path=path, completion=text[cursor:end] + eos_of(fmt),
                          prompt=_render(fmt, text, cursor, end, path, index, opts, language)))
    for _ in range(count(opts.fim_per_100)):
        i = rng.choice(candidates)
        cursor, line_end = next_line_hole(text, i)
        a = rng.randint(cursor, max(cursor, line_end - 1))
        span = rng.randint(1, 3)
        end_line = min(n_lines - 1, i + span - 1)
        _, b = next_line_hole(text, end_line)
        b = rng.randint(a + 1, max(a + 1, b)) if b > a else a + 1
        b = min(b, len(text))
        out.append(Sample(kind="fim", path=path, completion=text[a:b] + eos_of(fmt),
                          prompt=_render(fmt, text, a, b, path, index, opts, language)))
    for _ in range(count(opts.span_per_100)):
        i = rng.choice(candidates)
        j = min(n_lines - 1, i + rng.randint(2, opts.max_span_lines) - 1)
        cursor, _ = next_line_hole(text, i)
        _, end = next_line_hole(text, j)
        out.append(Sample(kind="span", path=path, completion=text[cursor:end] + eos_of(fmt),
                          prompt=_render(fmt, text, cursor, end, path, index, opts, language)))
    if opts.file_chunk_chars > 0:
        out += file_chunk_samples(path, text, fmt, repo=opts.repo, chunk_chars=opts.file_chunk_chars)
    if language == "python":
        out += instruct_samples(path, text, fmt, rng=rng, share=opts.instruct_share)
    return out


def instruct_samples(path: str, text: str, fmt: FimFormat, *, rng: random.Random, share: float) -> list[Sample]:
    """"Write a function that …" answered by a real project function without its docstring."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.split("\n")
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node)
        if not doc or rng.random() >= share or not node.body or node.end_lineno is None:
            continue
        first = node.body[0]
        rest = node.body[1:]
        if not rest or first.end_lineno is None:
            continue
        head = lines[(node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1:first.lineno - 1]
        body = lines[first.end_lineno:node.end_lineno]
        code = "\n".join(head + body)
        indent = len(head[0]) - len(head[0].lstrip()) if head else 0
        code = "\n".join(ln[indent:] for ln in code.split("\n"))
        prompt = (f"<|im_start|>user\nIn `{path}`, write a function `{node.name}`: {doc.strip()}<|im_end|>\n"
                  "<|im_start|>assistant\n")
        out.append(Sample(kind="instruct", path=path, prompt=prompt, completion=f"```python\n{code}\n```<|im_end|>"))
    return out


def file_chunk_samples(path: str, text: str, fmt: FimFormat, *, repo: str, chunk_chars: int) -> list[Sample]:
    """The file in line-aligned chunks after the repo-level header (plain next-token training)."""
    head = f"{fmt.repo_name}{repo}\n{fmt.file_sep}{path}\n" if fmt.repo_name else f"# {path}\n"
    out: list[Sample] = []
    buf: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        buf.append(line)
        size += len(line)
        if size >= chunk_chars:
            out.append(Sample(kind="file", path=path, prompt=head, completion="".join(buf)))
            buf, size = [], 0
    if "".join(buf).strip():
        out.append(Sample(kind="file", path=path, prompt=head, completion="".join(buf)))
    return out
