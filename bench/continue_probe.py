"""Where the time of a jump and of continued typing goes: prefill vs decode, cached vs new tokens.

Calls the one pipeline (:func:`mochi_model.pipeline.complete_document`, no time budget) on a line in
the middle of a few files of an installed package: first 4 characters typed after arriving (a jump:
cold prompt), then 12 and 20 (typing on: the KV cache holds the front). Each ``--suffix`` budget is
one pass, so the suffix's share of a continue request shows directly (Qwen's PSM layout puts the
suffix after the prefix that changes).

    python bench/continue_probe.py --suffix 128,32 [--model GGUF] [--package rich]

Prints one line per request and writes ``bench/results/continue_probe.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

from common import DEFAULT_MODEL, package_dir

RESULTS = Path(__file__).parent / "results"
FILES = ("console.py", "layout.py", "table.py", "progress.py")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--backend", default="llama")
    ap.add_argument("--package", default="rich")
    ap.add_argument("--suffix", default="128,32", help="suffix token budgets, one pass each")
    ap.add_argument("--out", type=Path, default=RESULTS / "continue_probe.json")
    args = ap.parse_args()

    from mochi_core.config import load_config
    from mochi_model.loader import load_engine
    from mochi_model.pipeline import complete_document

    root = package_dir(args.package)
    project = Path(tempfile.mkdtemp(prefix="mochi-probe-"))
    cfg, _ = load_config(project)
    engine = load_engine(cfg, project, adapters=[], backend=args.backend, model=str(args.model))
    load_before = os.getloadavg()
    rows = []
    for budget in (int(x) for x in args.suffix.split(",")):
        c = copy.deepcopy(cfg.completion)
        c.suffix_tokens = budget
        for name in FILES:
            if not (root / name).exists():
                continue
            text = (root / name).read_text()
            lines = text.split("\n")
            i = len(lines) // 2
            while len(lines[i].strip()) < 24:
                i += 1
            start = sum(len(x) + 1 for x in lines[:i]) + len(lines[i]) - len(lines[i].lstrip())
            end = start + len(lines[i].lstrip())
            for typed in (4, 12, 20):
                off = start + typed
                doc = text[:off] + text[end:]  # the rest of the line is not typed yet
                t = time.perf_counter()
                r = complete_document(engine, doc, off, path=f"{args.package}/{name}", config=c, time_budget_s=None)
                cm = r.completion
                row = {"suffix_tokens": budget, "file": name, "kind": "jump" if typed == 4 else "continue",
                       "typed": typed, "total_ms": (time.perf_counter() - t) * 1000, "prompt_tokens": cm.prompt_tokens,
                       "cached_tokens": cm.cached_tokens, "prefill_ms": cm.prefill_ms, "decode_ms": cm.decode_ms,
                       "out_tokens": cm.completion_tokens, "text": r.text}
                rows.append(row)
                print(f"suffix={budget:4} {name:12} {row['kind']:8} typed={typed:2} total={row['total_ms']:6.0f} ms "
                      f"prompt={cm.prompt_tokens} cached={cm.cached_tokens} prefill={cm.prefill_ms:6.0f} "
                      f"decode={cm.decode_ms:5.0f} tokens={cm.completion_tokens}")
    engine.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python bench/continue_probe.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "out"), "load_before": load_before,
        "load_after": os.getloadavg(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
