"""Eval outputs: a printed table, ``eval.json`` and a bar-chart PNG with 95 % CI error bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CATEGORY_LABELS = {"cross_file": "cross-file", "in_file": "in-file", "docstring": "docstring"}


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def _em_ci(m: dict[str, Any]) -> str:
    lo, hi = m["em_ci"]
    return f"{_pct(m['em'])} [{_pct(lo)},{_pct(hi)}]"


def _gain(g: dict[str, Any] | None) -> str:
    if g is None:
        return ""
    lo, hi = g["ci"]
    return f"{100 * g['em_gain']:+.1f} [{100 * lo:+.1f},{100 * hi:+.1f}] {g['verdict']}"


def _categories(summary: dict[str, Any]) -> list[str]:
    counts = summary.get("meta", {}).get("categories") or {}
    names = {c for per in summary["configs"].values() for c in per.get("next_line", {}).get("categories", {})}
    return [c for c in CATEGORY_LABELS if c in names or c in counts]


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and one row per configuration, in run order."""
    cats = _categories(summary)
    kinds = sorted({k for per in summary["configs"].values() for k in per})
    header = ["config"]
    if "next_line" in kinds:
        header += ["next-line EM % [95% CI]"]
        for c in cats:
            n = next((per["next_line"]["categories"][c]["n"] for per in summary["configs"].values()
                      if c in per.get("next_line", {}).get("categories", {})), 0)
            header.append(f"{CATEGORY_LABELS[c]} EM (n={n})")
        header += ["next-line ES"]
    if "cross_file" in kinds:
        n = next(per["cross_file"]["n"] for per in summary["configs"].values() if "cross_file" in per)
        header += [f"cross-file set EM % [95% CI] (n={n})"]
    if "span" in kinds:
        header += ["span EM % [95% CI]", "span ES"]
    header += ["empty %", "p50 ms", "next-line EM vs base [95% CI]"]
    if "cross_file" in kinds:
        header.append("cross-file set EM vs base")
    elif "cross_file" in cats:
        header.append("cross-file EM vs base")
    rows = []
    for name in summary.get("rows") or list(summary["configs"]):
        per = summary["configs"].get(name)
        if per is None:
            continue
        row = [name]
        nl = per.get("next_line")
        if "next_line" in kinds:
            row.append(_em_ci(nl) if nl else "-")
            for c in cats:
                m = (nl or {}).get("categories", {}).get(c)
                row.append(_pct(m["em"]).strip() if m else "-")
            row.append(_pct(nl["es"]) if nl else "-")
        if "cross_file" in kinds:
            row.append(_em_ci(per["cross_file"]) if "cross_file" in per else "-")
        if "span" in kinds:
            sp = per.get("span")
            row += [_em_ci(sp) if sp else "-", _pct(sp["es"]) if sp else "-"]
        n_all = sum(m["n"] for m in per.values())
        row.append(_pct(sum(m.get("empty", 0.0) * m["n"] for m in per.values()) / n_all).strip() if n_all else "-")
        lat = sorted(m["latency_ms_p50"] for m in per.values())
        row.append(f"{lat[len(lat) // 2]:.0f}")
        g = summary.get("gains", {}).get(name, {}).get("next_line")
        row.append(_gain(g))
        if "cross_file" in kinds:
            row.append(_gain(summary.get("gains", {}).get(name, {}).get("cross_file")))
        elif "cross_file" in cats:
            row.append(_gain((g or {}).get("categories", {}).get("cross_file")))
        rows.append(row)
    return header, rows


def comparison_lines(summary: dict[str, Any]) -> list[str]:
    """One line per compared pair (next-line EM, overall and cross-file)."""
    out = []
    for pair, cmp in summary.get("comparisons", {}).items():
        g = cmp.get("next_line")
        if pair.endswith(" vs base") or (g is None and "cross_file" not in cmp):
            continue
        parts = [f"next-line EM {_gain(g)}"] if g is not None else []
        if "cross_file" in cmp:
            parts.append(f"cross-file set {_gain(cmp['cross_file'])}")
        elif g is not None and g.get("categories", {}).get("cross_file"):
            parts.append(f"cross-file {_gain(g['categories']['cross_file'])}")
        out.append(f"{pair}: " + "; ".join(parts))
    return out


def render_table(summary: dict[str, Any]) -> str:
    header, body = table_rows(summary)
    rows = [header, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extra = comparison_lines(summary)
    if extra:
        lines += ["", "paired comparisons (EM points, 95% CI):", *(f"  {x}" for x in extra)]
    lines += sweep_lines(summary.get("sweep"))
    return "\n".join(lines)


def sweep_lines(sweep: dict[str, Any] | None) -> list[str]:
    """The weight sweep on the validation files: every point's EM, the chosen one marked."""
    if not sweep:
        return []
    names = sweep["adapters"]

    def label(ws: list[float]) -> str:
        return ", ".join(f"{n} {w:g}" for n, w in zip(names, ws, strict=True))

    out = ["", f"stack weights swept on {sweep['holes']} next-line holes of {sweep['valid_files']} validation files "
           f"(configured: {label(sweep['configured'])}):"]
    for p in sorted(sweep["points"], key=lambda p: (-p["em"], -p["es"])):
        mark = "  <- stack@best" if p["weights"] == sweep["best"] else ""
        out.append(f"  {label(p['weights'])}: EM {_pct(p['em']).strip()} ES {_pct(p['es']).strip()}{mark}")
    if sweep.get("config_written"):
        out.append(f"  chosen weights written to {sweep['config_written']} (previous file kept as .bak)")
    return out


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

    names = [n for n in summary.get("rows") or list(summary["configs"]) if n in summary["configs"]]
    # one bar group per row: next-line overall, then each category, then span
    series: list[tuple[str, str, str | None]] = []
    kinds = sorted({k for n in names for k in summary["configs"][n]})
    if "next_line" in kinds:
        series.append(("next-line", "next_line", None))
        series += [(CATEGORY_LABELS[c], "next_line", c) for c in _categories(summary)]
    if "cross_file" in kinds:
        series.append(("cross-file set", "cross_file", None))
    if "span" in kinds:
        series.append(("span", "span", None))
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(names) + 2), 4))
    width = 0.8 / max(1, len(series))
    for j, (label, kind, cat) in enumerate(series):
        xs, ys, err = [], [], [[], []]
        for i, n in enumerate(names):
            m = summary["configs"][n].get(kind)
            if m is not None and cat is not None:
                m = m.get("categories", {}).get(cat)
            if m is None:
                continue
            xs.append(i + j * width)
            ys.append(100 * m["em"])
            err[0].append(100 * (m["em"] - m["em_ci"][0]))
            err[1].append(100 * (m["em_ci"][1] - m["em"]))
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=label)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(names))], names, rotation=20,
                  ha="right")
    ax.set_ylabel("exact match % (95% CI)")
    title = summary.get("meta", {}).get("repo", "")
    ax.set_title(f"mochi eval {title}".strip())
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
