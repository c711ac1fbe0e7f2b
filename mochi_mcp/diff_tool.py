"""``generate_diff``: a unified diff for an instruction that is verified to apply before it is returned.

The model is asked for the complete updated code, and Mochi computes the diff itself
(:func:`mochi_mcp.patch.make_diff`), so the diff's context always matches the file. Before
returning, the diff is applied to the original with the strict patcher and must reproduce the
intended text. Repairs: an answer that is itself a diff is applied leniently and re-diffed; an answer
cut off at the token limit is regenerated once with a larger limit. When neither helps, the tool
fails with a message saying what to change.

With both ``file_path`` and ``original_code``, only that region of the file is rewritten (it must
occur exactly once) and the diff is still against the whole file, which keeps large files usable.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

from mochi_mcp.errors import BadToolInput, DiffImpossible
from mochi_mcp.generation import CONSERVATIVE_TEMPERATURE, Limits, generate
from mochi_mcp.patch import PatchDoesNotApply, apply_diff, make_diff, verify
from mochi_mcp.prompts import extract_code, looks_like_diff, rewrite_prompt
from mochi_mcp.workspace import Workspace, language_for
from mochi_model import retrieval
from mochi_model.types import Engine

MAX_REWRITE_TOKENS = 2500  # larger inputs: pass the region to change as original_code
MAX_ANSWER_TOKENS = 4096
RETRY_TEMPERATURE = 0.3
MIN_SIMILARITY = 0.3  # below this the "rewrite" is some other code, not an edit
UNCHANGED_NUDGE = ("\n\nThe code above does NOT make this change yet. Your previous answer repeated it unchanged: "
                   "this time the code you return must differ from it where the change requires.")
SNIPPET_PATH = "snippet"


def generate_diff(ws: Workspace, engine: Engine, *, instruction: str, file_path: str | None = None,
                  original_code: str | None = None, max_tokens: int | None = None,
                  limits: Limits | None = None) -> dict[str, Any]:
    """Produce a verified unified diff applying ``instruction`` to a file or a piece of code.

    Returns:
        ``diff`` (git-style, ``a/PATH`` → ``b/PATH``), ``path``, ``added``, ``removed``, ``verified``
        and ``repairs`` (what had to be fixed on the way).

    Raises:
        BadToolInput, PathOutsideProject, FileUnreadable, GenerationTimeout, DiffImpossible.
    """
    instruction = (instruction or "").strip()
    if not instruction:
        raise BadToolInput("instruction is empty: say what to change, e.g. 'rename foo to bar'")
    if not file_path and original_code is None:
        raise BadToolInput("pass file_path (a file in the project) or original_code (the code to change)")
    limits = limits or Limits()
    rel, whole = SNIPPET_PATH, original_code or ""
    if file_path:
        rel, whole = ws.read_text(file_path)
    region = whole
    partial = bool(file_path) and original_code is not None
    if partial:
        if not original_code.strip():
            raise BadToolInput("original_code is empty; leave it out to change the whole file")
        hits = whole.count(original_code)
        if hits != 1:
            where = "does not occur" if hits == 0 else f"occurs {hits} times"
            raise BadToolInput(f"original_code {where} in {rel}; pass an exact, unique excerpt of the file")
        region = original_code
    language = language_for(rel) if rel != SNIPPET_PATH else ""
    size = engine.count_tokens(region)
    if size > MAX_REWRITE_TOKENS:
        raise DiffImpossible(
            f"{rel} is about {size} tokens, over the {MAX_REWRITE_TOKENS}-token rewrite limit; pass the part "
            "to change as original_code together with file_path"
        )
    index = ws.index(required=False)
    definitions: list[str] = []
    if index is not None:
        # Only one-line signatures of symbols the instruction names: small models given whole chunks
        # of other code tend to rewrite those instead of the code they were asked to change.
        pieces = retrieval.gather(index, instruction, language=language, exclude_path=rel, budget_tokens=200,
                                  count_tokens=engine.count_tokens, max_definitions=6, max_chunks=0)
        definitions = [f"`{p.text.splitlines()[0].strip()}` ({p.path}:{p.start_line})" for p in pieces]
    prompt = rewrite_prompt(instruction=instruction, language=language, path=rel, original=region,
                            definitions=definitions)
    budget = min(MAX_ANSWER_TOKENS, max_tokens or int(size * 1.5) + 128)
    repairs: list[str] = []
    new_region = _rewrite(engine, prompt, region, budget, limits, repairs)
    new_whole = whole.replace(region, new_region, 1) if partial else new_region
    if new_whole == whole:
        raise DiffImpossible("the model returned the code unchanged; state the change more concretely "
                             "(what to add, remove or rename, and where)")
    diff = make_diff(whole, new_whole, rel)
    try:
        verify(whole, diff, new_whole)
    except PatchDoesNotApply:
        # Cannot happen with make_diff's own output unless the text has odd line endings; a diff
        # with maximal context is the most literal form there is.
        diff = make_diff(whole, new_whole, rel, context=len(whole.splitlines()) + 1)
        repairs.append("re-diffed with full context")
        verify(whole, diff, new_whole)
    added = sum(1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
    removed = sum(1 for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---"))
    return {"diff": diff, "path": rel, "added": added, "removed": removed, "verified": True,
            "repairs": repairs, "new_code": new_region}


def _rewrite(engine: Engine, prompt: str, region: str, budget: int, limits: Limits, repairs: list[str]) -> str:
    """The model's updated version of ``region``.

    Repairs, each at most once: an answer cut off at the token limit is regenerated with twice the
    tokens; an answer identical to the original (small models often echo the code) is regenerated
    with light sampling and a prompt insisting on the change; an answer that is a diff is applied
    leniently.
    """
    cut_retry = same_retry = False
    temperature = CONSERVATIVE_TEMPERATURE
    while True:
        out = generate(engine, prompt, max_tokens=budget, temperature=temperature, limits=limits,
                       what="generate_diff")
        if out.finish_reason == "length":
            if not cut_retry and budget < MAX_ANSWER_TOKENS:
                cut_retry = True
                budget = min(MAX_ANSWER_TOKENS, budget * 2)
                repairs.append(f"answer was cut off; regenerated with max_tokens={budget}")
                continue
            raise DiffImpossible(
                f"the model's rewrite was cut off at {budget} tokens, so a diff would delete the rest; "
                "pass a smaller region as original_code (with file_path) or raise max_tokens"
            )
        code = extract_code(out.text)
        if looks_like_diff(code):
            try:
                code = apply_diff(region, code, fuzzy=True)
                repairs.append("the model answered with a diff; applied it leniently and re-diffed cleanly")
            except PatchDoesNotApply as exc:
                raise DiffImpossible(f"the model answered with a diff that does not match the code ({exc}); "
                                     "try again with a more specific instruction") from exc
        code = _match_final_newline(region, code)
        similarity = SequenceMatcher(None, region, code, autojunk=False).ratio()
        if region.count("\n") >= 3 and similarity < MIN_SIMILARITY:
            raise DiffImpossible(
                f"the model's answer is not an edit of the given code (only {similarity:.0%} similar), so no diff "
                "was made; pass a smaller region as original_code or a more specific instruction"
            )
        if code == region and not same_retry:
            same_retry = True
            temperature = RETRY_TEMPERATURE
            prompt += UNCHANGED_NUDGE
            repairs.append("the first answer repeated the code unchanged; regenerated insisting on the change")
            continue
        return code


def _match_final_newline(original: str, new: str) -> str:
    """Keep the original's end-of-file newline convention (models add or drop it at random)."""
    if not new:
        return new
    if original.endswith("\n") and not new.endswith("\n"):
        return new + "\n"
    if not original.endswith("\n"):
        return new.rstrip("\n")
    return new
