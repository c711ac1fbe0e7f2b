"""Does the prompt contain what a cross-file hole needs? A model-free check of retrieval, per ingredient.

For every held-out next-line hole that `mochi eval` would score, this builds the exact prompt the
pipeline builds (:func:`mochi_model.pipeline.prepare_request`, the engine's tokenizer, the project's
``[completion]`` budgets, the eval's index without the held-out files) and asks: do the identifiers
of the target line that the file before the cursor lacks (the cross-file names) occur in the
retrieved snippets? "Coverage" is the share of cross-file holes whose every such name is there — an
upper bound on what retrieval can add, measured in seconds instead of a model run. "Line there" is
the share whose target line occurs in the snippets as it is (whitespace aside: the model can copy
it), "best ES" the mean edit similarity of the closest snippet line to the target. Ablation rows
switch single ingredients of ``[completion] retrieval`` off; ``-follow`` shows similar chunks
without the lines after them. ``--drafts HOLES --draft-row ROW`` adds a RepoCoder-style second
retrieval: the query is the code before the cursor plus the first line a model predicted for the hole
(row ``ROW`` of a `mochi eval` ``holes.jsonl`` of the same holes), as a pipeline that retrieves again
with its own draft would see it.

    python bench/retrieval_bench.py --repo REPO --data PREPARED --tokenizer HF_FOLDER --holes 300 --name openai-agents
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Counter:
    """The engine's ``count_tokens`` without the model (same tokenizer)."""

    def __init__(self, folder: str) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(folder)

    def count_tokens(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--data", default="")
    ap.add_argument("--tokenizer", required=True, help="HF folder of the model (its tokenizer counts budgets)")
    ap.add_argument("--holes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/mochi-retrieval-bench")
    ap.add_argument("--ablate", default="imports,definitions,similar", help="ingredients to switch off one at a time")
    ap.add_argument("--name", default="")
    ap.add_argument("--drafts", default="", metavar="HOLES_JSONL",
                    help="also retrieve with each hole's predicted line appended (from a mochi eval holes.jsonl)")
    ap.add_argument("--draft-row", default="retrieval", help="--drafts: the eval row whose predictions are the drafts")
    args = ap.parse_args()

    import mochi_model.retrieval as retrieval_mod
    from mochi_core.config import load_config
    from mochi_model.context import retrieve_snippets
    from mochi_model.eval.categories import categorize, cross_file_names, definitions_by_name
    from mochi_model.eval.metrics import edit_similarity, normalize
    from mochi_model.eval.run import build_eval_index, held_out, sample_all
    from mochi_model.pipeline import prepare_request

    root = Path(args.repo)
    cfg, _ = load_config(root)
    files, test, _ = held_out(root, Path(args.data) if args.data else None, args.seed)
    index = build_eval_index(files, test, Path(args.out) / "project", cfg)
    defined = definitions_by_name(index.iter_symbols())
    # the eval's CrossCodeEval-style set: next-line holes whose line needs a name from another file
    holes = sample_all({p: files[p] for p in test}, args.holes, ("cross_file",), defined, seed=args.seed)
    cats = categorize(holes, files, defined)
    engine = _Counter(args.tokenizer)
    import copy

    everything = list(cfg.completion.retrieval)
    variants = [("all", everything)] + [(f"-{x}", [y for y in everything if y != x])
                                        for x in args.ablate.split(",") if x]
    if "similar" in everything and retrieval_mod.FOLLOW_LINES:
        variants.append(("-follow", everything))
    variants.append(("none", []))
    drafts: dict[int, tuple[str, str]] = {}  # hole index → (target, predicted line)
    if args.drafts:
        path, config = args.drafts, args.draft_row
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if r.get("config") == config:
                drafts[int(r["hole"])] = (r["target"], r["pred"])
        if not drafts:
            raise SystemExit(f"{path}: no holes of row {config!r}")
        variants.insert(1, ("all+draft", everything))
    follow = retrieval_mod.FOLLOW_LINES
    rows = []
    for name, ingredients in variants:
        retrieval_mod.FOLLOW_LINES = 0 if name == "-follow" else follow
        budgets = copy.deepcopy(cfg.completion)
        budgets.retrieval = ingredients
        covered = {c: 0 for c in set(cats)}
        total = {c: 0 for c in set(cats)}
        tokens = []
        line_there = 0
        best_es = []
        t0 = time.perf_counter()
        for i, (h, c) in enumerate(zip(holes, cats, strict=True)):
            doc = h.document(files[h.path])
            if name == "all+draft":  # the query sees the draft's line as if it were typed
                target, draft = drafts.get(i, ("", ""))
                if target != h.target:
                    raise SystemExit(f"hole {i}: the drafts file is from other holes ({target!r} vs {h.target!r})")
                snippets = retrieve_snippets(index, doc[:h.cursor] + draft, path=h.path,
                                             budget=budgets.context_tokens, count=engine.count_tokens,
                                             ingredients=ingredients)
            else:
                snippets = prepare_request(engine, doc, h.cursor, path=h.path, index=index, config=budgets).snippets
            context = "\n".join(s.text for s in snippets)
            tokens.append(engine.count_tokens(context))
            target = normalize(h.target)
            lines = {normalize(x) for x in context.splitlines() if x.strip()}
            line_there += target in lines
            near = [x for x in lines if abs(len(x) - len(target)) <= max(len(x), len(target)) // 2]
            best_es.append(max((edit_similarity(x, target) for x in near), default=0.0))
            names = cross_file_names(h.target, doc[:h.cursor], h.path, defined)
            if not names:
                continue
            total[c] += 1
            have = set(_WORD.findall(context))
            covered[c] += all(n in have for n in names)
        ms = (time.perf_counter() - t0) * 1000 / len(holes)
        cross = total.get("cross_file", 0)
        rows.append({"variant": name, "cross_file_holes": cross,
                     "coverage": covered.get("cross_file", 0) / cross if cross else float("nan"),
                     "line_there": line_there / len(holes), "best_line_es": sum(best_es) / len(best_es),
                     "context_tokens_mean": sum(tokens) / len(tokens), "retrieval_ms_per_hole": ms})
    index.close()
    print(f"{root.name}: {len(holes)} cross-file next-line holes (the eval's cross_file set)")
    print(f"{'variant':14} {'cross-file coverage':>20} {'line there':>11} {'best ES':>8} {'context tokens':>15} "
          f"{'ms/hole':>8}")
    for r in rows:
        print(f"{r['variant']:14} {100 * r['coverage']:19.1f}% {100 * r['line_there']:10.1f}% "
              f"{100 * r['best_line_es']:8.1f} {r['context_tokens_mean']:15.0f} {r['retrieval_ms_per_hole']:8.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"retrieval_bench{'-' + args.name if args.name else ''}.json"
    out.write_text(json.dumps({"repo": str(root), "holes": len(holes), "rows": rows,
                               "load_average": os.getloadavg(), "command": "python bench/retrieval_bench.py "
                               + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v)}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
