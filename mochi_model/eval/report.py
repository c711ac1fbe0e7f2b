"""Eval outputs: a printed table, ``eval.json`` and a bar-chart PNG with 95 % CI error bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ORDER = ("base", "retrieval", "adapter", "both")


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def table_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows ``[config, nl EM [CI], nl ES, span EM [CI], span ES, p50 ms, gain vs base]``."""
    rows = []
    for name in ORDER:
        per = summary["configs"].get(name)
        if per is None:
            continue
        row = [name]
        for kind in ("next_line", "span"):
            m = per.get(kind)
            if m is None:
                row += ["-", "-"]
                continue
            lo, hi = m["em_ci"]
            row += [f"{_pct(m['em'])} [{_pct(lo)},{_pct(hi)}]", _pct(m["es"])]
        lat = [m["latency_ms_p50"] for m in per.values()]
        row.append(f"{sorted(lat)[len(lat) // 2]:.0f}")
        g = summary.get("gains", {}).get(name, {}).get("next_line")
        row.append("" if g is None else f"{100 * g['em_gain']:+.1f} ({g['verdict']})")
        rows.append(row)
    return rows


HEADER = ["config", "next-line EM % [95% CI]", "next-line ES", "span EM % [95% CI]", "span ES", "p50 ms",
          "next-line EM gain vs base"]


def render_table(summary: dict[str, Any]) -> str:
    rows = [HEADER, *table_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], out_dir: Path, *, per_hole: bool = True) -> dict[str, Path]:
    """Write ``eval.json`` (+ ``holes.jsonl``) and ``eval.png``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in summary.items() if k != "per_hole"}
    (out_dir / "eval.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    paths = {"json": out_dir / "eval.json", "png": out_dir / "eval.png"}
    if per_hole and "per_hole" in summary:
        with open(out_dir / "holes.jsonl", "w", encoding="utf-8") as f:
            for row in summary["per_hole"]:
                f.write(json.dumps(row) + "\n")
        paths["holes"] = out_dir / "holes.jsonl"
    plot(summary, paths["png"])
    return paths


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ORDER if n in summary["configs"]]
    kinds = sorted({k for n in names for k in summary["configs"][n]})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(1, len(kinds))
    for j, kind in enumerate(kinds):
        xs, ys, err = [], [], [[], []]
        for i, n in enumerate(names):
            m = summary["configs"][n].get(kind)
            if m is None:
                continue
            xs.append(i + j * width)
            ys.append(100 * m["em"])
            err[0].append(100 * (m["em"] - m["em_ci"][0]))
            err[1].append(100 * (m["em_ci"][1] - m["em"]))
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=kind.replace("_", "-"))
    ax.set_xticks([i + width * (len(kinds) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylabel("exact match % (95% CI)")
    title = summary.get("meta", {}).get("repo", "")
    ax.set_title(f"mochi eval {title}".strip())
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
