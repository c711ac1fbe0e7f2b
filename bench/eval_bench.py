"""Completion quality on a real repository: the four `mochi eval` configurations, one table.

Runs :func:`mochi_model.eval.run.evaluate_repo` (same holes, prompts and engine as `mochi eval`) and
writes ``bench/results/eval_bench.json`` (summary + the table + the command). With ``--from DIR`` it
only collects an eval already written to DIR (e.g. one run configuration per process on a busy
machine, merged), so the numbers quoted are exactly the ones measured.

    python bench/eval_bench.py --repo REPO --subdir src --data PREPARED --adapter ADAPTER \\
        --model HF_FOLDER --holes 20 --kinds next_line --label "name version"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

OUT = Path(__file__).parent / "results" / "eval_bench.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="from_dir", help="collect an existing eval.json from this folder")
    ap.add_argument("--command", default="", help="with --from: the command that produced it (recorded)")
    ap.add_argument("--repo")
    ap.add_argument("--subdir", default="")
    ap.add_argument("--data")
    ap.add_argument("--adapter", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--holes", type=int, default=300)
    ap.add_argument("--kinds", default="next_line,span")
    ap.add_argument("--label", default="")
    ap.add_argument("--output", default="bench/results/eval_bench_run")
    args = ap.parse_args()
    if args.from_dir:
        summary = json.loads((Path(args.from_dir) / "eval.json").read_text())
    else:
        from mochi_core.config import load_config
        from mochi_model.eval.run import EvalOptions, evaluate_repo
        from mochi_model.loader import load_engine

        cfg, _ = load_config(Path(args.repo))
        ads = [(Path(args.adapter), 1.0)] if args.adapter else []
        engine = load_engine(cfg, Path(args.repo), adapters=ads, model=args.model or None)
        opts = EvalOptions(holes=args.holes, kinds=tuple(args.kinds.split(",")), subdir=args.subdir,
                           repo_label=args.label)
        summary = evaluate_repo(engine, Path(args.repo), Path(args.output),
                                data_dir=Path(args.data) if args.data else None, options=opts)
    print(summary["table"])
    summary["command"] = args.command or " ".join(["python", *sys.argv])
    summary["machine"] = (f"{platform.machine()} {platform.processor()}; {os.cpu_count()} CPUs; "
                          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
