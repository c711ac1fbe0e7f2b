"""MCP tool latency: p50/p95 per tool, first call (cold) and warm, on a real model and a real repo.

For each tool a fresh server is built (fresh engine provider, so the cold call pays the model load,
index open and first prefill), the tool is called once cold and ``--runs`` times warm through the
SDK's in-memory client. The baseline, measured in the same calls, is the time spent inside the bare
engine (``complete_fim`` / ``generate``, timed at the engine boundary): ``ratio`` = tool latency /
engine time, so 1.00 means MCP, retrieval, checks and diff verification cost nothing measurable, and
the difference is the tool's own overhead. Engine tokens/s are reported so runs on a busy machine
can be told apart from slow tools.

    python bench/mcp_bench.py --model ~/.cache/mochi/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --runs 3

The repo (default: this repository's tracked files) is copied to a temporary folder and indexed
there. Writes ``bench/results/mcp_bench.json``. The machine may be shared: say so with the numbers.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import DEFAULT_MODEL, pct  # noqa: E402 - bench/ is the script's folder


def copy_repo(src: Path, dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=src, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (src / rel).is_file() and not rel.startswith("bench/results/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest / rel)
    (dest / ".git").mkdir(exist_ok=True)
    return dest


def pick_function(root: Path) -> tuple[str, str, int]:
    """A Python function of 6-30 lines: (relative path, its source, its middle line)."""
    for path in sorted(root.rglob("*.py")):
        if any(p.startswith(".") or p in ("tests", "bench") for p in path.relative_to(root).parts):
            continue
        text = path.read_text(errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and 6 <= node.end_lineno - node.lineno + 1 <= 30:
                lines = text.splitlines(keepends=True)
                src = "".join(lines[node.lineno - 1 : node.end_lineno])
                return path.relative_to(root).as_posix(), src, (node.lineno + node.end_lineno) // 2
    raise SystemExit(f"no Python function of 6-30 lines in {root}")


def tool_calls(root: Path, max_tokens: int) -> dict[str, dict[str, Any]]:
    rel, func, middle = pick_function(root)
    lines = (root / rel).read_text().splitlines(keepends=True)
    return {
        "complete_code": {"prefix": "".join(lines[:middle]), "suffix": "".join(lines[middle:]), "file_path": rel,
                          "max_tokens": max_tokens // 2},
        "domain_query": {"instruction": "write a function that reads the project's configuration file and returns "
                                        "the configured model name, raising the project's error type when missing",
                         "mode": "auto", "max_tokens": max_tokens},
        "generate_diff": {"file_path": rel, "original_code": func, "instruction": "insert the comment line "
                          "`# checked by mochi` as the first line of the function body"},
        "suggest_pattern": {"goal": "raise an error for an invalid value and log it"},
    }


class TimingEngine:
    """Engine proxy that adds up the seconds and tokens spent inside the real engine."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.model_id = engine.model_id
        self.seconds = 0.0
        self.tokens = 0

    def _timed(self, fn: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        self.seconds += time.perf_counter() - t0
        self.tokens += out.completion_tokens
        return out

    def complete_fim(self, *a: Any, **kw: Any) -> Any:
        return self._timed(self._engine.complete_fim, *a, **kw)

    def generate(self, *a: Any, **kw: Any) -> Any:
        return self._timed(self._engine.generate, *a, **kw)

    def count_tokens(self, text: str) -> int:
        return self._engine.count_tokens(text)


async def bench_tool(name: str, args: dict[str, Any], root: Path, config: Any, runs: int) -> dict[str, Any]:
    from mcp.client import Client

    from mochi_mcp.server import build_server
    from mochi_mcp.workspace import Workspace
    from mochi_model.holder import EngineHolder, real_engine_factory

    real = real_engine_factory(config, root)
    timing: list[TimingEngine] = []

    def factory(progress: Any) -> Any:
        timing.append(TimingEngine(real(progress)))
        return timing[0]

    provider = EngineHolder(factory=factory, description=config.model.path)
    ws = Workspace(root, config)
    server = build_server(ws, provider, timeout_s=300)
    times, engine_s, tokens, errors = [], [], [], []
    async with Client(server) as client:
        for i in range(runs + 1):
            before = (timing[0].seconds, timing[0].tokens) if timing else (0.0, 0)
            t0 = time.perf_counter()
            result = await client.call_tool(name, args)
            times.append(time.perf_counter() - t0)
            engine_s.append(timing[0].seconds - before[0])
            tokens.append(timing[0].tokens - before[1])
            if result.is_error:
                errors.append(result.content[0].text[:200])
            print(f"  {name} call {i} ({'cold' if i == 0 else 'warm'}): {times[-1]:.2f}s, engine {engine_s[-1]:.2f}s, "
                  f"{tokens[-1]} tokens" + (f" ERROR {errors[-1]}" if result.is_error else ""), flush=True)
    ws.close()
    return {"cold_s": times[0], "warm": times[1:], "engine_warm": engine_s[1:], "tokens_warm": tokens[1:],
            "errors": errors, "load_s": provider.load_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="GGUF file, HF folder or hub id")
    ap.add_argument("--repo", default=str(REPO), help="a git repository to index and query (copied first)")
    ap.add_argument("--runs", type=int, default=3, help="warm calls per tool")
    ap.add_argument("--max-tokens", type=int, default=96, help="domain_query budget (complete_code: half)")
    ap.add_argument("--tools", default="complete_code,domain_query,generate_diff,suggest_pattern")
    ap.add_argument("--out", default=str(REPO / "bench/results/mcp_bench.json"))
    opts = ap.parse_args()

    from mochi_core.config import load_config
    from mochi_index import ProjectIndex

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(opts.repo).resolve(), Path(tmp) / Path(opts.repo).resolve().name)
        t0 = time.perf_counter()
        idx = ProjectIndex.open(root, create=True)
        idx.update()
        idx.close()
        index_s = time.perf_counter() - t0
        config, _ = load_config(root)
        config.model.path = opts.model
        calls = tool_calls(root, opts.max_tokens)
        rows: dict[str, Any] = {}
        for name in opts.tools.split(","):
            print(f"{name}:", flush=True)
            res = anyio.run(bench_tool, name, calls[name], root, config, opts.runs)
            warm, eng = res["warm"], res["engine_warm"]
            rows[name] = {"cold_s": round(res["cold_s"], 3), "model_load_s": round(res["load_s"] or 0, 3),
                          "warm_p50_s": round(pct(warm, 0.5), 3), "warm_p95_s": round(pct(warm, 0.95), 3),
                          "engine_p50_s": round(pct(eng, 0.5), 3),
                          "ratio_p50_vs_engine": round(pct(warm, 0.5) / max(pct(eng, 0.5), 1e-9), 3),
                          "overhead_p50_s": round(pct([w - e for w, e in zip(warm, eng, strict=True)], 0.5), 3),
                          "tokens_per_s": round(sum(res["tokens_warm"]) / max(sum(eng), 1e-9), 2),
                          "runs": len(warm), "errors": res["errors"]}
    print(f"\nrepo {opts.repo} (indexed in {index_s:.1f}s), model {opts.model}, {opts.runs} warm runs/tool")
    print(f"{'tool':16} {'cold s':>7} {'load s':>7} {'warm p50':>9} {'warm p95':>9} {'engine p50':>11} "
          f"{'ratio':>6} {'overhead s':>11} {'tok/s':>6}")
    for name, r in rows.items():
        print(f"{name:16} {r['cold_s']:7.2f} {r['model_load_s']:7.2f} {r['warm_p50_s']:9.2f} {r['warm_p95_s']:9.2f} "
              f"{r['engine_p50_s']:11.2f} {r['ratio_p50_vs_engine']:6.3f} {r['overhead_p50_s']:11.3f} "
              f"{r['tokens_per_s']:6.1f}" + ("  (errors)" if r["errors"] else ""))
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "model": opts.model, "repo": opts.repo,
        "runs": opts.runs, "index_s": round(index_s, 2), "machine": f"{platform.machine()} {platform.processor()}",
        "note": f"{os.cpu_count()} CPUs, load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}", "tools": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
