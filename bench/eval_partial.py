"""Score a `mochi eval` that was stopped (or is still running) from its ``holes.jsonl``.

An eval row of a 1.5B model with retrieval costs ~70 s a hole on a 2-core CPU, so a run is often
stopped and resumed (``mochi eval --resume``) across sessions. This reads what is there and reports,
on the holes that *every* chosen row finished (so the comparison stays paired): EM and ES per row
with a bootstrap 95 % CI, and paired differences for the pairs asked for.

    python bench/eval_partial.py OUT/holes.jsonl --rows base,retrieval,compare:base,compare:retrieval \\
        --pair compare:retrieval-compare:base --pair compare:retrieval-retrieval --name NAME
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mochi_model.eval.metrics import bootstrap_ci, paired_diff_ci

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("holes", type=Path, help="the eval's holes.jsonl")
    ap.add_argument("--rows", required=True, help="comma-separated rows (configs) to compare")
    ap.add_argument("--pair", action="append", default=[], help="A-B: paired difference of row A minus row B")
    ap.add_argument("--name", default="", help="write bench/results/eval_partial-NAME.json")
    args = ap.parse_args()

    rows = [r for r in args.rows.split(",") if r]
    scored: dict[str, dict[int, dict]] = {}
    for line in args.holes.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            scored.setdefault(d["config"], {})[int(d["hole"])] = d
    missing = [r for r in rows if r not in scored]
    if missing:
        ap.error(f"no holes scored for {', '.join(missing)} (have: {', '.join(sorted(scored))})")
    holes = sorted(set.intersection(*(set(scored[r]) for r in rows)))
    if not holes:
        ap.error("the rows share no finished hole")

    def values(row: str, key: str) -> list[float]:
        return [float(scored[row][h][key]) for h in holes]

    out: dict = {"holes_file": str(args.holes), "paired_holes": len(holes), "rows": {}, "pairs": {},
                 "finished": {r: len(scored[r]) for r in rows}, "load_average": os.getloadavg()}
    print(f"{len(holes)} holes finished by every row ({', '.join(f'{r}: {len(scored[r])}' for r in rows)})")
    for r in rows:
        em, es = values(r, "em"), values(r, "es")
        lo, hi = bootstrap_ci(em)
        out["rows"][r] = {"em": sum(em) / len(em), "em_ci": [lo, hi], "es": sum(es) / len(es)}
        print(f"  {r:20} EM {100 * sum(em) / len(em):5.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]  "
              f"ES {100 * sum(es) / len(es):5.1f}")
    for pair in args.pair:
        a, b = _split_pair(pair, rows)
        d, lo, hi = paired_diff_ci(values(a, "em"), values(b, "em"))
        noise = " (inside the noise)" if lo <= 0 <= hi else ""
        out["pairs"][f"{a} - {b}"] = {"em_diff": d, "ci": [lo, hi]}
        print(f"  {a} - {b}: {100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{noise}")
    if args.name:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"eval_partial-{args.name}.json"
        path.write_text(json.dumps(out, indent=1))
        print(f"wrote {path}")


def _split_pair(pair: str, rows: list[str]) -> tuple[str, str]:
    """``A-B`` (row names may contain ``-`` themselves: the split whose both sides are rows)."""
    for i in range(len(pair)):
        if pair[i] == "-" and pair[:i] in rows and pair[i + 1:] in rows:
            return pair[:i], pair[i + 1:]
    raise SystemExit(f"--pair {pair}: not two of the rows {rows} joined by '-'")


if __name__ == "__main__":
    main()
