"""Completion quality on a real repository: `mochi eval`'s rows, one table, with the machine's load.

Runs ``mochi eval ARGS`` (the same command users run, through the one completion pipeline) and
copies its summary to ``bench/results/eval_bench[-NAME].json`` with the command, the machine and the
load average before and after, so every figure quoted can be reproduced with one command. With
``--from DIR`` it only collects an eval already written to DIR.

    python bench/eval_bench.py --name openai-agents -- REPO --data PREPARED --adapter ADAPTER \\
        --compare-model qwen2.5-coder-1.5b --holes 300 --kinds next_line --label "openai-agents 0.1.0" -o OUT
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="from_dir", help="collect an existing eval.json from this folder")
    ap.add_argument("--command", default="", help="with --from: the command that produced it (recorded)")
    ap.add_argument("--name", default="", help="suffix of the results file")
    ap.add_argument("eval_args", nargs=argparse.REMAINDER, help="-- then the `mochi eval` arguments")
    args = ap.parse_args()
    load_before = _load()
    if args.from_dir:
        out_dir = Path(args.from_dir)
        command = args.command
    else:
        eval_args = [a for a in args.eval_args if a != "--"] if args.eval_args[:1] == ["--"] else args.eval_args
        if not eval_args:
            ap.error("give `mochi eval` arguments after --, or --from DIR")
        from typer.main import get_command

        from mochi_cli.app import app

        command = "mochi eval " + shlex.join(eval_args)
        out_dir = Path(next((eval_args[i + 1] for i, a in enumerate(eval_args) if a in ("-o", "--output")),
                            "mochi-eval"))
        try:
            get_command(app).main(["eval", *eval_args], prog_name="mochi", standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise
    summary = json.loads((out_dir / "eval.json").read_text())
    print(summary["table"])
    summary["command"] = command or " ".join(["python", *sys.argv])
    summary["machine"] = (f"{platform.machine()} {platform.processor()}; {os.cpu_count()} CPUs; "
                          f"load average before {load_before}, after {_load()}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"eval_bench{'-' + args.name if args.name else ''}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
