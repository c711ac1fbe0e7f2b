"""Accuracy against latency, one point per model × quantization: the table the default preset comes from.

Each ``--point`` joins two measurements of one model that the other benches already make on this
machine: exact match from a ``mochi eval`` summary (``eval.json``, or a ``bench/eval_bench.py``
result: a row name and a hole set) and pause-to-suggestion latency from a ``bench/lsp_bench.py``
result (quiet phase, and the CPU-hog phase when it ran). The default preset should be the most
accurate point whose p50 over all pauses meets ``--target-ms``; when none does, the most accurate
point that still answers 90 % of the quiet pauses within 2 s (else the fastest), and the table says so.

    python bench/frontier.py \\
      --point "0.5B Q4_K_M" EVAL.json base LSP_05B.json \\
      --point "1.5B Q4_K_M" EVAL.json compare:base LSP_15B.json --set cross_file

Prints a table, writes ``bench/results/frontier.json`` and a scatter ``frontier.png`` beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
#: When no point meets the p50 target: the share of quiet pauses a point must answer within 2 s.
USABLE_SHARE = 0.9


def em_of(summary: dict[str, Any], row: str, hole_set: str) -> dict[str, Any]:
    """EM/ES with CIs of one row of an eval summary, for one hole set (``next_line``, ``cross_file``)."""
    configs = summary.get("configs", {})
    if row not in configs:
        raise SystemExit(f"row {row!r} is not in the eval summary (rows: {', '.join(configs)})")
    sets = configs[row]
    if hole_set not in sets:
        raise SystemExit(f"row {row!r} has no {hole_set!r} holes (sets: {', '.join(sets)})")
    s = sets[hole_set]
    return {"n": s["n"], "em": s["em"], "em_ci": s["em_ci"], "es": s["es"]}


def latency_of(lsp: dict[str, Any]) -> dict[str, Any]:
    """The first backend's quiet (and hog) pause latencies from an lsp_bench result."""
    results = [r for r in lsp.get("results", []) if r.get("quiet")]
    if not results:
        raise SystemExit("the lsp_bench result has no quiet phase")
    r = results[0]
    out = {"backend": r["backend"], "model": r.get("model"), "adapters": r.get("adapters", []),
           "peak_rss_mb": r.get("peak_rss_mb"), "load_before": r["quiet"].get("load_before")}
    for phase in ("quiet", "hog"):
        p = r.get(phase)
        if not p:
            continue
        out[phase] = {k: {"p50_ms": p[k]["p50_ms"], "p95_ms": p[k]["p95_ms"],
                          "within_2s": p[k]["share_suggested_within_2s"]} for k in ("all", "jump", "continue")}
    return out


def choose(points: list[dict[str, Any]], target_ms: float) -> dict[str, Any]:
    meeting = [p for p in points if p["latency"]["quiet"]["all"]["p50_ms"] <= target_ms]
    if meeting:
        best = max(meeting, key=lambda p: p["accuracy"]["em"])
        return {"choice": best["label"], "why": f"most accurate point with p50 <= {target_ms:.0f} ms"}
    usable = [p for p in points if p["latency"]["quiet"]["all"]["within_2s"] >= USABLE_SHARE]
    if usable:
        best = max(usable, key=lambda p: p["accuracy"]["em"])
        return {"choice": best["label"], "why": f"no point meets p50 <= {target_ms:.0f} ms here; the most accurate "
                f"with >= {100 * USABLE_SHARE:.0f} % of quiet pauses answered within 2 s"}
    fastest = min(points, key=lambda p: p["latency"]["quiet"]["all"]["p50_ms"])
    return {"choice": fastest["label"], "why": f"no point meets p50 <= {target_ms:.0f} ms or answers "
            f"{100 * USABLE_SHARE:.0f} % of pauses within 2 s here; the fastest one"}


def table(points: list[dict[str, Any]], hole_set: str) -> str:
    head = (f"{'point':22} {hole_set + ' EM % [95% CI]':>31} {'ES':>5} {'p50 all':>8} {'jump p50':>9} "
            f"{'cont p50':>9} {'<=2s':>5} {'hog <=2s':>9} {'RSS MB':>7}")
    lines = [head, "-" * len(head)]
    for p in points:
        a, q = p["accuracy"], p["latency"]["quiet"]
        hog = p["latency"].get("hog")
        hog_share = f"{100 * hog['all']['within_2s']:.0f}%" if hog else "-"
        em = f"{100 * a['em']:.1f} [{100 * a['em_ci'][0]:.1f}, {100 * a['em_ci'][1]:.1f}] (n={a['n']})"
        lines.append(
            f"{p['label']:22} {em:>31}"
            f" {100 * a['es']:5.1f} {q['all']['p50_ms']:8.0f} {q['jump']['p50_ms']:9.0f} {q['continue']['p50_ms']:9.0f}"
            f" {100 * q['all']['within_2s']:4.0f}% {hog_share:>9}"
            f" {p['latency'].get('peak_rss_mb') or float('nan'):7.0f}")
    return "\n".join(lines)


def plot(points: list[dict[str, Any]], target_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for p in points:
        a, x = p["accuracy"], p["latency"]["quiet"]["all"]["p50_ms"]
        err = [[100 * (a["em"] - a["em_ci"][0])], [100 * (a["em_ci"][1] - a["em"])]]
        ax.errorbar([x], [100 * a["em"]], yerr=err, fmt="o", capsize=4)
        ax.annotate(p["label"], (x, 100 * a["em"]), textcoords="offset points", xytext=(6, 4))
    ax.axvline(target_ms, linestyle="--", color="grey")
    ax.set_xlabel("pause → suggestion p50, ms (quiet)")
    ax.set_ylabel("exact match %, 95 % CI")
    ax.set_title("accuracy vs latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--point", nargs=4, action="append", required=True, metavar=("LABEL", "EVAL_JSON", "ROW", "LSP_JSON"))
    ap.add_argument("--set", default="next_line", help="hole set of the eval summary (next_line | cross_file)")
    ap.add_argument("--target-ms", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "frontier.json")
    args = ap.parse_args()
    points = []
    for label, eval_json, row, lsp_json in args.point:
        points.append({"label": label, "eval": eval_json, "row": row, "lsp": lsp_json,
                       "accuracy": em_of(json.loads(Path(eval_json).read_text()), row, args.set),
                       "latency": latency_of(json.loads(Path(lsp_json).read_text()))})
    decision = choose(points, args.target_ms)
    text = table(points, args.set)
    print(text)
    print(f"default: {decision['choice']} ({decision['why']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = args.out.with_suffix(".png")
    plot(points, args.target_ms, png)
    args.out.write_text(json.dumps({"command": "python bench/frontier.py " + " ".join(sys.argv[1:]), "set": args.set, "target_ms": args.target_ms, "points": points,
                                    "decision": decision, "table": text}, indent=1, default=lambda o: None
                                   if isinstance(o, float) and math.isnan(o) else o))
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
