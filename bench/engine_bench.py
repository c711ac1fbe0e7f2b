"""Engine benchmark on the real model: typing-trace latency with vs without KV reuse, and tok/s vs HF generate.

1. Typing trace: lines of real files from an installed package we did not write (default: ``rich``) are
   re-typed one character at a time; every keystroke is one completion request built by the same prompt
   assembly the LSP uses (``build_fim_request``, with retrieval from an in-memory index of the package's
   files, and the default ``[completion]`` budgets). The same trace runs on one loaded model twice — with
   KV prefix reuse and without — and we report p50/p95 latency and the ratio.
2. Throughput: prefill and decode tokens/s of the engine vs plain ``transformers.generate`` on the same
   prompts (greedy, no stop), and the process's peak RSS.

Prints a table and writes ``bench/results/engine_bench.json``. The CPU is shared with other jobs:
compare the ratios, not absolute numbers across runs.

    python bench/engine_bench.py [--steps 200] [--model PATH.gguf] [--no-retrieval] [--prefix-tokens N] ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from common import DEFAULT_MODEL, package_dir, pct  # noqa: E402 - bench/ is the script's folder

RESULTS = Path(__file__).parent / "results" / "engine_bench.json"


def typing_trace(package: str, steps: int, per_line: int = 24) -> list[dict]:
    """Keystroke steps: (file, text, cursor offset) while re-typing code lines of ``package``'s files."""
    files = sorted(package_dir(package).glob("*.py"))
    out: list[dict] = []
    for f in files:
        lines = f.read_text(encoding="utf-8").split("\n")
        candidates = [i for i, ln in enumerate(lines) if 24 <= len(ln.strip()) <= 70 and ln.startswith("        ")
                      and not ln.strip().startswith(("#", '"', "'"))]
        for i in candidates[len(candidates) // 3:][:2]:  # two lines per file, a third of the way in
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            head = "\n".join(lines[:i]) + "\n"
            tail = "\n" + "\n".join(lines[i + 1:])
            for k in range(indent + 1, min(len(line), indent + per_line) + 1):
                text = head + line[:k] + tail
                out.append({"file": f"{package}/{f.name}", "text": text, "offset": len(head) + k})
                if len(out) >= steps:
                    return out
    return out


def package_index(package: str):
    """An in-memory index (same interface as the LanceDB one) over the package's Python files."""
    from mochi_model.data.local_index import LocalIndex

    root = package_dir(package)
    return LocalIndex({f"{package}/{f.relative_to(root)}": f.read_text(encoding="utf-8")
                       for f in sorted(root.rglob("*.py"))})


def run_trace(engine, trace: list[dict], cfg, max_tokens: int, index=None, label: str = "") -> dict:
    from mochi_model.context import build_fim_request

    lat, cached, prompt, gen, accepted = [], [], [], [], []
    for i, step in enumerate(trace):
        req = build_fim_request(step["text"], step["offset"], path=step["file"], language="python", config=cfg,
                                count_tokens=engine.count_tokens, index=index)
        t0 = time.perf_counter()
        out = engine.complete_fim(req.prefix, req.suffix, req.snippets, max_tokens=max_tokens, path=step["file"],
                                  language="python")
        lat.append((time.perf_counter() - t0) * 1000)
        cached.append(out.cached_tokens)
        prompt.append(out.prompt_tokens)
        gen.append(out.completion_tokens)
        accepted.append(out.extra.get("accepted_tokens", 0))
        if label and (i + 1) % 25 == 0:
            print(f"  {label}: {i + 1}/{len(trace)} steps, p50 so far {statistics.median(lat):.0f} ms", flush=True)
    return {"p50_ms": statistics.median(lat), "p95_ms": pct(lat, 0.95), "mean_ms": statistics.fmean(lat),
            "mean_prompt_tokens": statistics.fmean(prompt), "mean_cached_tokens": statistics.fmean(cached),
            "mean_new_tokens": statistics.fmean(gen), "mean_lookup_accepted": statistics.fmean(accepted)}


def throughput(engine, prompts: list[str], new_tokens: int) -> dict:
    """Engine vs transformers.generate on the same prompts: prefill tok/s (prompt/first-token time), decode tok/s."""
    import torch

    from mochi_model.backends.base import GenerationRequest
    from mochi_model.generation import Generator

    be = engine.backend
    ours_pf, ours_dec, hf_pf, hf_dec = [], [], [], []
    for p in prompts:
        ids = be.encode(p)
        gen = Generator(be)
        t0 = time.perf_counter()
        cache = be.new_cache()
        be.prefill(ids, cache)
        ours_pf.append(len(ids) / (time.perf_counter() - t0))
        res = gen.generate(ids, GenerationRequest(max_tokens=new_tokens, stop_ids=[-1], reuse_cache=False))
        n_ours = len(res.token_ids)
        ours_dec.append((n_ours - 1) / (res.decode_ms / 1000))  # n tokens = n-1 forward steps after prefill
        x = torch.tensor([ids])
        with torch.inference_mode():
            t0 = time.perf_counter()
            be.model.generate(x, max_new_tokens=1, do_sample=False)
            t1 = time.perf_counter()
            out = be.model.generate(x, max_new_tokens=n_ours, min_new_tokens=n_ours, do_sample=False)
            t2 = time.perf_counter()
        n_new = out.shape[1] - len(ids)
        hf_pf.append(len(ids) / (t1 - t0))
        hf_dec.append((n_new - 1) / max(1e-9, (t2 - t1) - (t1 - t0)))
    m = statistics.fmean
    return {"prompt_tokens": [len(be.encode(p)) for p in prompts], "new_tokens": new_tokens,
            "engine_prefill_tok_s": m(ours_pf), "hf_prefill_tok_s": m(hf_pf),
            "engine_decode_tok_s": m(ours_dec), "hf_decode_tok_s": m(hf_dec),
            "prefill_ratio": m(ours_pf) / m(hf_pf), "decode_ratio": m(ours_dec) / m(hf_dec)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--package", default="rich", help="installed package whose files are re-typed")
    ap.add_argument("--prefix-tokens", type=int, default=0, help="default: [completion] prefix_tokens")
    ap.add_argument("--suffix-tokens", type=int, default=0, help="default: [completion] suffix_tokens")
    ap.add_argument("--context-tokens", type=int, default=0, help="default: [completion] context_tokens")
    ap.add_argument("--max-tokens", type=int, default=0, help="default: [completion] max_tokens")
    ap.add_argument("--no-retrieval", action="store_true", help="no project context (windows only)")
    ap.add_argument("--context-format", default="", help="comment | repo (default: the engine's)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-lookup-ablation", action="store_true", help="skip the reuse-without-prompt-lookup run")
    ap.add_argument("--out", default=str(RESULTS), help="JSON results file")
    args = ap.parse_args()

    from mochi_core.config import CompletionSection
    from mochi_model.backends.torch_backend import load_backend
    from mochi_model.engine import InferenceEngine
    from mochi_model.sources import resolve_model

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t0 = time.perf_counter()
    backend = load_backend(resolve_model(args.model), dtype=args.dtype)
    load_s = time.perf_counter() - t0
    trace = typing_trace(args.package, args.steps)
    d = CompletionSection()
    cfg = CompletionSection(prefix_tokens=args.prefix_tokens or d.prefix_tokens,
                            suffix_tokens=args.suffix_tokens or d.suffix_tokens,
                            context_tokens=0 if args.no_retrieval else (args.context_tokens or d.context_tokens))
    max_tokens = args.max_tokens or d.max_tokens
    index = None if args.no_retrieval else package_index(args.package)
    reuse = InferenceEngine(backend=backend, reuse_kv=True, repo_name=args.package)
    fresh = InferenceEngine(backend=backend, reuse_kv=False, repo_name=args.package)
    if args.context_format:
        reuse.context_format = fresh.context_format = args.context_format
    run_trace(reuse, trace[:2], cfg, max_tokens, index)  # warm-up (thread pools, allocator)
    with_reuse = run_trace(reuse, trace, cfg, max_tokens, index, "with reuse")
    without = run_trace(fresh, trace, cfg, max_tokens, index, "without reuse")
    no_lookup = None
    if not args.skip_lookup_ablation:
        reuse.reset_cache()
        reuse._gen.lookahead = 0
        no_lookup = run_trace(reuse, trace, cfg, max_tokens, index, "reuse, no prompt lookup")
    result = {
        "model": args.model, "dtype": str(backend.model.dtype), "load_s": load_s,
        "machine": f"{platform.machine()} {platform.processor() or ''}; {os.cpu_count()} CPUs, "
                   f"load average before {load_before}",
        "command": "python " + " ".join(sys.argv),
        "trace": {"package": args.package, "files": sorted({s['file'] for s in trace}), "steps": len(trace),
                  "prefix_tokens": cfg.prefix_tokens, "suffix_tokens": cfg.suffix_tokens,
                  "context_tokens": cfg.context_tokens, "max_tokens": max_tokens,
                  "retrieval": index is not None, "context_format": reuse.context_format},
        "with_reuse": with_reuse, "without_reuse": without,
        "p50_speedup": without["p50_ms"] / with_reuse["p50_ms"],
        "p95_speedup": without["p95_ms"] / with_reuse["p95_ms"],
    }
    if no_lookup is not None:
        result["reuse_without_prompt_lookup"] = no_lookup
        result["prompt_lookup_p50_speedup"] = no_lookup["p50_ms"] / with_reuse["p50_ms"]
    if not args.skip_throughput:
        prompts = [s["text"][max(0, s["offset"] - 1500): s["offset"]] for s in trace[:: max(1, len(trace) // 3)][:3]]
        result["throughput"] = throughput(reuse, prompts, 24)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_file = Path(args.out)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(f"typing trace: {len(trace)} keystroke-steps over {', '.join(result['trace']['files'])}")
    print(f"{'':22}{'p50 ms':>10}{'p95 ms':>10}{'mean prompt':>13}{'mean cached':>13}{'mean new':>10}")
    rows = [("with KV reuse", with_reuse), ("without reuse", without)]
    if no_lookup is not None:
        rows.append(("reuse, no lookup", no_lookup))
    for name, r in rows:
        print(f"{name:22}{r['p50_ms']:>10.0f}{r['p95_ms']:>10.0f}{r['mean_prompt_tokens']:>13.0f}"
              f"{r['mean_cached_tokens']:>13.0f}{r['mean_new_tokens']:>10.1f}")
    print(f"reuse speedup: p50 {result['p50_speedup']:.2f}x, p95 {result['p95_speedup']:.2f}x")
    if no_lookup is not None:
        print(f"prompt lookup (within reuse): p50 {result['prompt_lookup_p50_speedup']:.2f}x, "
              f"{with_reuse['mean_lookup_accepted']:.1f} draft tokens accepted per request")
    if "throughput" in result:
        t = result["throughput"]
        print(f"prefill tok/s: engine {t['engine_prefill_tok_s']:.0f} vs HF generate {t['hf_prefill_tok_s']:.0f} "
              f"({t['prefill_ratio']:.2f}x); decode tok/s: engine {t['engine_decode_tok_s']:.1f} vs "
              f"{t['hf_decode_tok_s']:.1f} ({t['decode_ratio']:.2f}x)")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB; model load {load_s:.1f} s; wrote {out_file}")


if __name__ == "__main__":
    main()
