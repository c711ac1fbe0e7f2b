"""Quantized CPU engine benchmark: llama.cpp (GGUF as stored) vs torch, side by side in one run.

Each engine runs in its own child process (so load time and peak RSS are its own), one after the
other on the same prompts, with the load average recorded before each:

torch runs at the dtype its backend picks on this CPU (``--torch-dtype auto``: bf16 where the CPU has
AVX-512/AMX, else fp32, which is faster than emulated bf16 on an AVX2-only CPU).

- load: seconds from nothing to a backend ready to answer (torch: the cached de-quantized folder;
  its one-time conversion is not counted) and the child's peak RSS after the run;
- prefill tok/s: a fresh cache, the prompt fed in the Generator's 256-token chunks;
- decode tok/s: one token per pass (no prompt-lookup drafts) after that prompt;
- token agreement: torch's greedy continuation of each prompt is fed to llama.cpp (teacher forcing)
  and we count the positions where llama.cpp's argmax is the same token; also how many prompts give
  the same free-running greedy continuation.

Extra GGUF models (``--extra-model 1.5b=PATH``) run on llama.cpp only (latency only).

    python bench/quant_bench.py [--model PATH.gguf] [--prompt-tokens 1024] [--decode-tokens 32] [--prompts 20]

Prints a table and writes ``bench/results/quant_bench.json``. The CPU is shared: compare the ratios
from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_MODEL, package_dir  # noqa: E402 - bench/ is the script's folder

RESULTS = Path(__file__).parent / "results" / "quant_bench.json"


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prompt_texts(package: str, n: int, chars: int) -> list[str]:
    """``n`` code prefixes cut from ``package``'s files at line ends, as an editor's prefix windows are."""
    files = sorted(package_dir(package).rglob("*.py"))
    out: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        if len(text) < chars + 200:
            continue
        cut = text.find("\n", len(text) // 2) + 1
        start = max(0, cut - chars)
        start = text.find("\n", start) + 1
        out.append(text[start:cut])
        if len(out) >= n:
            break
    return out


# --- child: one engine ---------------------------------------------------------------------------
def child(spec: dict) -> dict:
    import numpy as np

    from mochi_model.backends import load_backend
    from mochi_model.backends.base import GenerationRequest
    from mochi_model.generation import Generator
    from mochi_model.sources import resolve_model

    t0 = time.perf_counter()
    be = load_backend(spec["backend"], resolve_model(spec["model"]), dtype=spec.get("dtype", "auto"),
                      options=spec.get("options") or {})
    load_s = time.perf_counter() - t0
    out: dict = {"backend": spec["backend"], "model": spec["model"], "load_s": load_s, "load_avg_before": spec["load"]}
    if spec["backend"] == "torch":
        out["dtype"] = str(be.model.dtype)
    # throughput: prompt of ~prompt_tokens tokens, chunked prefill, then single-token decode
    long_ids = be.encode(spec["long_text"])[: spec["prompt_tokens"]]
    pf, dec = [], []
    for _ in range(spec["repeats"]):
        cache = be.new_cache()
        t1 = time.perf_counter()
        for s in range(0, len(long_ids), 256):
            logits = be.prefill(long_ids[s: s + 256], cache)
        t2 = time.perf_counter()
        tok = int(np.argmax(logits))
        for _ in range(spec["decode_tokens"]):
            tok = int(np.argmax(be.step(tok, cache)))
        t3 = time.perf_counter()
        pf.append(len(long_ids) / (t2 - t1))
        dec.append(spec["decode_tokens"] / (t3 - t2))
        del cache
    out["serving_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before agreement arrays
    out.update(prompt_tokens=len(long_ids), decode_tokens=spec["decode_tokens"],
               prefill_tok_s=statistics.median(pf), decode_tok_s=statistics.median(dec),
               prefill_runs=pf, decode_runs=dec)
    # short-context decode (what a completion at ~400 cached tokens sees)
    cache = be.new_cache()
    logits = be.prefill(long_ids[:400], cache)
    tok = int(np.argmax(logits))
    t2 = time.perf_counter()
    for _ in range(spec["decode_tokens"]):
        tok = int(np.argmax(be.step(tok, cache)))
    out["decode_tok_s_at_400"] = spec["decode_tokens"] / (time.perf_counter() - t2)
    del cache
    # greedy continuations and teacher-forced agreement
    gen = Generator(be)
    gen.lookahead = 0
    n_new = spec["agree_tokens"]
    if spec.get("reference"):
        same_pos = total = same_seq = 0
        for ref in spec["reference"]:
            ids, want = ref["ids"], ref["greedy"]
            rows = be.logits_for(ids + want[:-1])[len(ids) - 1:]
            got = [int(t) for t in np.argmax(rows, axis=1)]
            same_pos += sum(int(a == b) for a, b in zip(got, want, strict=True))
            total += len(want)
            free = gen.generate(ids, GenerationRequest(max_tokens=n_new, stop_ids=[-1], reuse_cache=False))
            same_seq += int(free.token_ids == want)
        enc_same = sum(int(be.encode(t) == r["ids"]) for t, r in zip(spec["prompts"], spec["reference"], strict=True))
        out.update(agreement=same_pos / max(1, total), agreement_positions=total, same_greedy_sequences=same_seq,
                   same_tokenization=enc_same, prompts=len(spec["reference"]))
    elif spec.get("prompts"):
        refs = []
        for text in spec["prompts"]:
            ids = be.encode(text)
            res = gen.generate(ids, GenerationRequest(max_tokens=n_new, stop_ids=[-1], reuse_cache=False))
            refs.append({"ids": ids, "greedy": res.token_ids})
        out["reference"] = refs
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_child(spec: dict) -> dict:
    spec = {**spec, "load": load_avg()}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{spec['backend']} child failed (exit {proc.returncode})")
    line = proc.stdout.strip().splitlines()[-1]
    # keep each engine's numbers at once: a later failure must not lose a slow torch run
    partial = RESULTS.with_name("quant_bench_partial.jsonl")
    with partial.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--extra-model", action="append", default=[], help="LABEL=PATH.gguf, llama.cpp only")
    ap.add_argument("--package", default="rich")
    ap.add_argument("--prompt-tokens", type=int, default=1024)
    ap.add_argument("--decode-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--torch-dtype", default="auto",
                    help="auto = what the torch backend picks here (bf16 with AVX-512/AMX, else fp32)")
    ap.add_argument("--prompts", type=int, default=10, help="prompts for token agreement")
    ap.add_argument("--agree-tokens", type=int, default=16, help="greedy tokens per agreement prompt")
    ap.add_argument("--prompt-chars", type=int, default=1200, help="characters per agreement prompt")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default: all cores)")
    ap.add_argument("--llama-variant", action="append", default=[],
                    help="LABEL=key=value,key=value: another llama.cpp row with these backend options "
                         "(e.g. fa-off=flash_attn=off or 1-thread=threads=1)")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--torch-from", default="",
                    help="reuse the torch row of an earlier run (a line of quant_bench_partial.jsonl) instead of "
                         "re-running torch (it is the slow side: ~13 min under load)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    long_text = "\n".join(prompt_texts(args.package, 3, 6000))
    prompts = prompt_texts(args.package, args.prompts, args.prompt_chars)
    base = {"long_text": long_text, "prompt_tokens": args.prompt_tokens, "decode_tokens": args.decode_tokens,
            "repeats": args.repeats, "agree_tokens": args.agree_tokens, "prompts": prompts}
    llama_opts = {"threads": args.threads} if args.threads else {}
    started = time.time()
    rows: dict[str, dict] = {}
    if args.torch_from:
        lines = [json.loads(x) for x in Path(args.torch_from).read_text().splitlines() if x.strip()]
        got = next(x for x in reversed(lines) if x["backend"] == "torch")
        got["reused_from_earlier_run"] = True
        rows[f"torch {got['dtype'].replace('torch.', '')}"] = got
    elif not args.skip_torch:
        print(f"torch … (load {load_avg()})", flush=True)
        got = run_child({**base, "backend": "torch", "model": args.model, "dtype": args.torch_dtype})
        rows[f"torch {got['dtype'].replace('torch.', '')}"] = got
    t = next((r for k, r in rows.items() if k.startswith("torch")), None)
    ref = t.pop("reference", None) if t is not None else None
    print(f"llama.cpp … (load {load_avg()})", flush=True)
    rows["llama.cpp Q4_K_M"] = run_child({**base, "backend": "llama", "model": args.model, "options": llama_opts,
                                          "reference": ref})
    for spec in args.llama_variant:
        label, _, opts = spec.partition("=")
        extra = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
        print(f"llama.cpp {label} … (load {load_avg()})", flush=True)
        rows[f"llama.cpp {label}"] = run_child({**base, "backend": "llama", "model": args.model,
                                                "options": {**llama_opts, **extra}, "reference": ref})
    for spec in args.extra_model:
        label, _, path = spec.partition("=")
        print(f"llama.cpp {label} … (load {load_avg()})", flush=True)
        rows[f"llama.cpp {label}"] = run_child({**base, "backend": "llama", "model": path, "options": llama_opts,
                                                "prompts": [], "reference": None})
    q = rows["llama.cpp Q4_K_M"]
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()} {platform.processor() or ''}; {os.cpu_count()} CPUs",
        "load_avg_after": load_avg(), "wall_s": time.time() - started,
        "engines": rows,
    }
    if t is not None:
        result["ratios"] = {"decode": q["decode_tok_s"] / t["decode_tok_s"],
                            "decode_at_400": q["decode_tok_s_at_400"] / t["decode_tok_s_at_400"],
                            "prefill": q["prefill_tok_s"] / t["prefill_tok_s"],
                            "load": t["load_s"] / q["load_s"],
                            "rss": t.get("serving_rss_mb", t["peak_rss_mb"]) / q.get("serving_rss_mb", q["peak_rss_mb"])}
    try:
        import llama_cpp

        stamp = Path(llama_cpp.__file__).parent / "mochi-build.json"
        result["llama_cpp"] = {"version": llama_cpp.__version__,
                               "build": json.loads(stamp.read_text()) if stamp.is_file() else None}
    except ImportError:
        pass
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nprefill prompt {q['prompt_tokens']} tokens, decode {q['decode_tokens']} tokens; "
          f"load average after {result['load_avg_after']}")
    print(f"{'engine':24}{'load s':>8}{'prefill tok/s':>15}{'decode tok/s':>14}{'@400':>8}{'serve RSS MB':>14}"
          f"{'load avg before':>18}")
    for name, r in rows.items():
        print(f"{name:24}{r['load_s']:>8.2f}{r['prefill_tok_s']:>15.1f}{r['decode_tok_s']:>14.2f}"
              f"{r['decode_tok_s_at_400']:>8.2f}{r.get('serving_rss_mb', r['peak_rss_mb']):>14.0f}"
              f"{r['load_avg_before']:>18}")
    if "ratios" in result:
        r = result["ratios"]
        print(f"llama.cpp / torch: decode {r['decode']:.2f}x (at 400: {r['decode_at_400']:.2f}x), "
              f"prefill {r['prefill']:.2f}x, load {r['load']:.1f}x faster, RSS {r['rss']:.1f}x smaller")
    if "agreement" in q:
        print(f"token agreement with {t['dtype'] if t else 'torch'} (teacher-forced): {100 * q['agreement']:.1f} % of "
              f"{q['agreement_positions']} tokens; same greedy {args.agree_tokens}-token continuation on "
              f"{q['same_greedy_sequences']}/{q['prompts']} prompts; same tokenization on "
              f"{q['same_tokenization']}/{q['prompts']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
