"""Issue 15 part 3, "an adapter that keeps up": release N's adapter, its update on N+1, a retrain on N+1.

Two releases of one real project, through the commands a user runs (each timed, load average kept):

1. a working copy of release N is indexed and ``mochi train project --from-index --output W/adapter``
   trains the release-N adapter (the defaults: a first training);
2. the working copy becomes release N+1 (files added, changed and removed as the release did), is
   indexed again, and the same command *updates* the adapter (changed files + a replay sample, the
   update's short budget); the release-N adapter is kept in ``W/adapter/history/1``;
3. ``mochi train project --from-index --fresh --output W/retrain`` retrains from scratch on N+1
   (or ``--retrain DIR`` reuses such an adapter trained with the same defaults);
4. ``mochi eval W/proj --changed-since N`` scores base and the three adapters on the held-out files
   of N+1 that changed since N (same holes, one run), with paired 95 % CIs between the adapters.

Every phase whose output exists is skipped, so a stopped run goes on where it stopped::

    python bench/update_bench.py --old mcp-2.1.0 --new mcp-2.3.0 --work /tmp/upd --label "mcp 2.1.0 -> 2.3.0" \\
        --model qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --backend llama --holes 100 --name mcp-2.1.0-2.3.0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def sync_tree(src: Path, dest: Path) -> dict[str, int]:
    """Make ``dest`` hold ``src``'s files (``.mochi/`` in ``dest`` is kept); counts of what changed."""
    counts = {"added": 0, "changed": 0, "removed": 0}
    want = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    if dest.exists():
        for p in sorted(dest.rglob("*")):
            rel = p.relative_to(dest).as_posix()
            if p.is_file() and not rel.startswith(".mochi/") and rel not in want:
                p.unlink()
                counts["removed"] += 1
    for rel in sorted(want):
        s, d = src / rel, dest / rel
        if d.is_file() and d.read_bytes() == s.read_bytes():
            continue
        counts["changed" if d.exists() else "added"] += 1
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
    return counts


def run(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run one CLI command, its output into ``log``; wall time and load averages."""
    print("$ " + " ".join(cmd), flush=True)
    before, t0 = os.getloadavg(), time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return {"command": " ".join(cmd), "wall_s": round(wall, 1), "load_avg_start": before,
            "load_avg_end": os.getloadavg(), "log": str(log)}


def mochi(*args: str) -> list[str]:
    return [sys.executable, "-m", "mochi_cli", *args]


def training_facts(folder: Path) -> dict[str, Any]:
    rep = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    upd = folder / "update.json"
    out = {k: rep.get(k) for k in ("steps", "best_step", "first_val_loss", "best_val_loss", "tokens",
                                   "tokens_per_s", "seconds", "stopped")}
    out["peak_rss_mb"] = (rep.get("memory") or {}).get("peak_rss_mb")
    if upd.is_file():
        u = json.loads(upd.read_text(encoding="utf-8"))
        last = u.get("last") or {}
        out["update"] = {"generation": u.get("generation"), "mode": u.get("mode"),
                         **{k: last[k] for k in ("changed_samples", "replay_samples", "unchanged_lines_samples",
                                                 "samples_seen_share") if k in last}}
        if "changed_files" in last:
            out["update"]["changed_files"] = len(last["changed_files"]) + len(last.get("new_files", []))
    return out


def score(eval_json: Path, rows: list[str], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """EM/ES/empty per row and the paired EM differences, as `mochi eval` computed them (eval.json)."""
    ev = json.loads(eval_json.read_text(encoding="utf-8"))
    nl = {r: ev["configs"][r]["next_line"] for r in rows}
    out: dict[str, Any] = {"paired_holes": min(v["n"] for v in nl.values()), "pairs": {},
                           "rows": {r: {"em": v["em"], "es": v["es"], "empty": round(v["empty"] * v["n"])}
                                    for r, v in nl.items()}}
    for a, b in pairs:
        c = ev["comparisons"][f"{a} vs {b}"]["next_line"]
        lo, hi = c["ci"]
        out["pairs"][f"{a} - {b}"] = {"em_diff": c["em_gain"], "ci": [lo, hi], "noise": lo <= 0 <= hi}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", type=Path, required=True, help="release N (a folder of its sources)")
    ap.add_argument("--new", type=Path, required=True, help="release N+1")
    ap.add_argument("--work", type=Path, required=True, help="working folder (kept: phases resume)")
    ap.add_argument("--model", default="", help="eval model (default: the config's)")
    ap.add_argument("--backend", default="", help="eval backend (auto | torch | llama ...)")
    ap.add_argument("--retrain", type=Path, default=None,
                    help="a from-scratch N+1 adapter trained with the same defaults (else phase 3 trains one)")
    ap.add_argument("--holes", type=int, default=300, help="next-line holes on N+1's changed held-out files")
    ap.add_argument("--rows", default="base,adapter", help="eval rows (adapter = the three adapters)")
    ap.add_argument("--label", default="", help="repository and versions, shown in the output")
    ap.add_argument("--name", default="", help="write bench/results/update_bench-NAME.json")
    args = ap.parse_args()

    w = args.work.resolve()
    proj, adapter, logs = w / "proj", w / "adapter", w / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    state_file = w / "update_bench.json"
    state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}

    def save() -> None:
        state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")

    if "train_n" not in state:
        shutil.rmtree(proj, ignore_errors=True)
        sync_tree(args.old.resolve(), proj)
        run(mochi("index", str(proj)), logs / "index_n.log")
        state["train_n"] = run(mochi("train", "project", "--from-index", "--project", str(proj), "--output",
                                     str(adapter)), logs / "train_n.log") | {"facts": training_facts(adapter)}
        save()
    if "update" not in state:
        state["sync"] = sync_tree(args.new.resolve(), proj)
        run(mochi("index", str(proj)), logs / "index_n1.log")
        state["update"] = run(mochi("train", "project", "--from-index", "--project", str(proj), "--output",
                                    str(adapter)), logs / "update.log") | {"facts": training_facts(adapter)}
        save()
    old_adapter = adapter / "history" / "1"
    retrain = args.retrain.resolve() if args.retrain else w / "retrain"
    if args.retrain is None and "retrain" not in state:
        state["retrain"] = run(mochi("train", "project", "--from-index", "--fresh", "--project", str(proj),
                                     "--output", str(retrain)), logs / "retrain.log") | {"facts": training_facts(retrain)}
        save()
    if "update" in state:  # the record as it is now (a rerun of the bench refreshes it)
        state["update"]["facts"] = training_facts(adapter)
    if args.retrain is not None:
        state["retrain"] = {"reused": str(retrain), "facts": training_facts(retrain)}

    # the row of each adapter is adapter:NAME (its config's name; a repeated one gets #N) in --adapter order;
    # eval pairs each adapter with the ones given before it
    links = w / "rows"
    links.mkdir(exist_ok=True)
    named = {"release_n": old_adapter, "updated": adapter, "retrained": retrain}
    for name, folder in named.items():
        link = links / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(folder, target_is_directory=True)
    ev = mochi("eval", str(proj), "--changed-since", str(args.old.resolve()), "--kinds", "next_line",
               "--holes", str(args.holes), "--rows", args.rows, "--resume", "-o", str(w / "eval"),
               *(a for n in named for a in ("--adapter", f"{links / n}:1")))
    if args.model:
        ev += ["--model", args.model]
    if args.backend:
        ev += ["--backend", args.backend]
    if args.label:
        ev += ["--label", args.label]
    state["eval"] = run(ev, logs / "eval.log")
    ev_rows = json.loads((w / "eval" / "eval.json").read_text(encoding="utf-8"))["rows"]
    row_of = dict(zip(named, [r for r in ev_rows if r.startswith("adapter:")], strict=True))
    state["row_names"] = row_of
    rn, up, rt = row_of["release_n"], row_of["updated"], row_of["retrained"]
    rows = (["base"] if "base" in ev_rows else []) + [rn, up, rt]
    state["scores"] = score(w / "eval" / "eval.json", rows, [(up, rn), (rt, rn), (rt, up)]
                            + ([(up, "base"), (rn, "base")] if "base" in rows else []))
    state.update(label=args.label, old=str(args.old), new=str(args.new), machine=f"{os.cpu_count()} cores")
    save()

    s = state["scores"]
    print(f"\n{args.label or w.name}: {s['paired_holes']} next-line holes in N+1's changed held-out files")
    for r, v in s["rows"].items():
        r = next((f"{k} ({r})" for k, x in state["row_names"].items() if x == r), r)
        print(f"  {r:36} EM {100 * v['em']:5.1f} %  ES {100 * v['es']:5.1f}  empty {v['empty']}")
    for p, v in s["pairs"].items():
        lo, hi = v["ci"]
        print(f"  {p:42} {100 * v['em_diff']:+5.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
              + (" inside the noise" if v["noise"] else ""))
    for phase in ("train_n", "update", "retrain"):
        f = state.get(phase, {})
        print(f"  {phase:9} wall {f.get('wall_s', '-')} s  {json.dumps(f.get('facts', {}).get('update', ''))}")
    if args.name:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"update_bench-{args.name}.json").write_text(json.dumps(state, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
