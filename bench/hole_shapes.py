"""How many of the eval's next-line targets end with an open bracket (a formatted multi-line call's
first line, ``logger.warning(``)? Post-processing must not cut those: a model-free count.

    python bench/hole_shapes.py --repo REPO [--repo REPO2] [--holes 300]

Prints a line per repository and writes ``bench/results/hole_shapes.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", action="append", required=True)
    ap.add_argument("--holes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "hole_shapes.json")
    args = ap.parse_args()

    from mochi_model.eval.run import held_out, sample_all
    from mochi_model.postprocess import _open_stack

    rows = []
    for repo in args.repo:
        files, test, _ = held_out(Path(repo), None, args.seed)
        holes = sample_all({p: files[p] for p in test}, args.holes, ("next_line",), {}, seed=args.seed)
        open_end = [h.target for h in holes if _open_stack(h.target)]
        rows.append({"repo": repo, "holes": len(holes), "open_bracket": len(open_end),
                     "share": len(open_end) / len(holes) if holes else float("nan"), "examples": open_end[:8]})
        print(f"{repo}: {len(open_end)} of {len(holes)} next-line targets end with an open bracket "
              f"({100 * rows[-1]['share']:.1f} %)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python bench/hole_shapes.py " + " ".join(f"--repo {r}" for r in args.repo),
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
