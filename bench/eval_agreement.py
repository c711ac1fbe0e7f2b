"""Do two engines score the same holes the same? Paired EM between two `mochi eval` runs.

For a quantized path vs its float reference (issue 13: "next-line EM within 2 points, paired CI"),
run `mochi eval` twice with the same repository, seed, hole kinds and rows — once per backend or
model file — and compare the two ``holes.jsonl`` files: holes are matched by row, path, kind and
target line, so a run stopped half-way compares on the holes both finished.

    python bench/eval_agreement.py A/holes.jsonl B/holes.jsonl --names llama,torch --out bench/results/x.json

Prints per row: holes paired, EM of each, the paired EM difference with its 95 % bootstrap CI, and
how often the two predicted exactly the same text; writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mochi_model.eval.metrics import mean, paired_diff_ci  # noqa: E402
from mochi_model.eval.run import read_checkpoint  # noqa: E402


def pair(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Records of both runs per row, matched by (path, kind, target) (first occurrence each)."""
    def keyed(recs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for r in recs:
            out.setdefault((r["config"], r["path"], r["kind"], r["target"]), r)
        return out

    ka, kb = keyed(a), keyed(b)
    rows: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for key in sorted(ka.keys() & kb.keys()):
        rows.setdefault(key[0], []).append((ka[key], kb[key]))
    return rows


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row, pairs in pair(a, b).items():
        ea, eb = [x["em"] for x, _ in pairs], [y["em"] for _, y in pairs]
        d, lo, hi = paired_diff_ci(ea, eb, seed=seed)
        out[row] = {"n": len(pairs), "em_a": mean(ea), "em_b": mean(eb), "em_diff": d, "ci": [lo, hi],
                    "es_a": mean([x["es"] for x, _ in pairs]), "es_b": mean([y["es"] for _, y in pairs]),
                    "same_prediction": mean([float(x["pred"] == y["pred"]) for x, y in pairs]),
                    "verdict": "inside the noise" if lo <= 0 <= hi else ("a better" if lo > 0 else "b better")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="holes.jsonl of run A")
    ap.add_argument("b", type=Path, help="holes.jsonl of run B")
    ap.add_argument("--names", default="a,b", help="labels of A and B, comma-separated")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = ap.parse_args()
    na, nb = (args.names.split(",") + ["b"])[:2]
    res = compare(read_checkpoint(args.a), read_checkpoint(args.b))
    if not res:
        raise SystemExit("no hole is in both files (same repository, seed and hole kinds?)")
    print(f"{'row':12} {'holes':>5} {'EM ' + na:>10} {'EM ' + nb:>10} {'diff [95% CI]':>24} {'same text':>9}")
    for row, r in res.items():
        ci = f"{100 * r['em_diff']:+.1f} [{100 * r['ci'][0]:+.1f},{100 * r['ci'][1]:+.1f}]"
        print(f"{row:12} {r['n']:>5} {100 * r['em_a']:>9.1f}% {100 * r['em_b']:>9.1f}% {ci:>24} "
              f"{100 * r['same_prediction']:>8.0f}%  {r['verdict']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "names": [na, nb], "rows": res},
                                       indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
