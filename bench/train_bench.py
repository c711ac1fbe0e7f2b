"""Training benchmarks: throughput and peak memory of LoRA settings, and the default `mochi train` run.

Three modes, all on a `mochi prepare` folder and an HF model folder (the converted GGUF):

* ``compare`` (default): Mochi's LoRA step vs a plain PEFT loop on the same samples, same run. The
  plain loop is the textbook one (``model(input_ids, labels=...)``, prompt masked to -100, logits for
  every position); Mochi's step computes logits only for completion positions and can adapt only
  the last N layers (backward stops there). Writes ``results/train_bench.json``.
* ``--sweep``: each candidate setting (dtype, trained layers, gradient checkpointing, batch size,
  sequence length) runs a few optimizer steps on the same samples in its own subprocess, so each
  one's peak RSS (``ru_maxrss``) is its own. Writes ``results/train_sweep.json``; the defaults in
  ``mochi_model/training/config.py`` were chosen from it.
* ``--default-run``: ``mochi train project --data D --output A`` with no other flags, as a user
  runs it; records wall time, steps, tokens/s, val loss, peak memory and the load average at start
  and end. Writes ``results/train_default.json``.

    python bench/train_bench.py --model HF_FOLDER --data DIR --samples 4
    python bench/train_bench.py --model HF_FOLDER --data DIR --sweep --samples 8
    python bench/train_bench.py --data DIR --default-run --output ADAPTER_DIR

Numbers on a shared CPU are noisy: compare settings measured in the same run, and read the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

# name: (dtype, num_layers, grad_checkpointing, batch_size, synthetic sequence length or 0 = real samples)
SWEEP = {
    "fp32-all": ("float32", -1, False, 2, 0),
    "fp32-all-ckpt": ("float32", -1, True, 2, 0),
    "fp32-last12": ("float32", 12, False, 2, 0),
    "fp32-last8": ("float32", 8, False, 2, 0),
    "fp32-last8-b4": ("float32", 8, False, 4, 0),
    "fp32-last8-ckpt": ("float32", 8, True, 2, 0),
    "fp32-last4": ("float32", 4, False, 2, 0),
    "bf16-all": ("bfloat16", -1, False, 2, 0),
    "bf16-last8": ("bfloat16", 8, False, 2, 0),
    "fp32-last8-len1024": ("float32", 8, False, 1, 1024),
    "fp32-last8-len2048": ("float32", 8, False, 1, 2048),
    "fp32-all-len2048": ("float32", -1, False, 1, 2048),
}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _lora(model, num_layers: int):
    from mochi_model.training.config import TrainConfig
    from mochi_model.training.torch_trainer import attach_lora

    return attach_lora(model, TrainConfig(num_layers=num_layers, dropout=0.0))


def run(variant: str, model_path: str, examples, dtype: str) -> dict:
    import torch

    from mochi_model.training.model_io import load_base_model
    from mochi_model.training.torch_trainer import _completion_loss_module

    model, _, _ = load_base_model(model_path, dtype)
    lm = _lora(model, 8 if variant == "mochi-last8" else -1)
    opt = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=1e-4)
    net = _completion_loss_module(lm)
    tokens, t0 = 0, time.perf_counter()
    for ex in examples:
        ids = torch.tensor([ex.ids])
        if variant == "plain-peft":
            labels = ids.clone()
            labels[:, :ex.start] = -100
            loss = lm(input_ids=ids, labels=labels).loss
        else:
            loss = net(ids, ex.start)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += len(ex.ids)
    secs = time.perf_counter() - t0
    return {"variant": variant, "samples": len(examples), "tokens": tokens, "seconds": round(secs, 2),
            "tokens_per_s": round(tokens / secs, 2)}


def _examples(model_path: str, data: str, samples: int, max_len: int = 1024, seed: int = 0):
    """The first ``samples`` training samples in the trainer's shuffled order (same for every candidate)."""
    from transformers import AutoTokenizer

    from mochi_model.training.dataset import read_jsonl, tokenize

    rows = read_jsonl(Path(data) / "train.jsonl")
    examples, _ = tokenize(rows, AutoTokenizer.from_pretrained(model_path), max_len)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in order[:samples]]


def _synthetic(examples, length: int, completion: int = 320):
    """One ``length``-token sample made of real samples back to back, loss on the last ``completion`` tokens."""
    from mochi_model.training.dataset import Example

    ids: list[int] = []
    while len(ids) < length:
        for ex in examples:
            ids.extend(ex.ids)
    return Example(ids=ids[:length], start=length - completion)


def child(spec: dict) -> dict:
    """One sweep candidate in this (fresh) process: load, attach LoRA, ``steps`` optimizer steps, forward-only pass."""
    import torch

    from mochi_model.training.config import TrainConfig
    from mochi_model.training.memory import MemoryWatch, peak_rss_mb
    from mochi_model.training.model_io import load_base_model
    from mochi_model.training.torch_trainer import _completion_loss_module, attach_lora

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    t_load = time.perf_counter()
    model, _, _ = load_base_model(spec["model"], spec["dtype"])
    mem = MemoryWatch()
    mem.loaded()
    load_s = time.perf_counter() - t_load
    peak_after_load = peak_rss_mb()
    cfg = TrainConfig(num_layers=spec["num_layers"], grad_checkpointing=spec["ckpt"], dropout=0.0)
    lora = attach_lora(model, cfg)
    net = _completion_loss_module(lora)
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    examples = _examples(spec["model"], spec["data"], spec["samples"])
    if spec["length"]:
        examples = [_synthetic(examples, spec["length"])] * spec["steps"]
    batch = spec["batch_size"]
    step_times: list[float] = []
    step_cpu: list[float] = []
    step_tokens: list[int] = []
    for s in range(len(examples) // batch):
        t, c = time.perf_counter(), time.process_time()
        toks = 0
        for ex in examples[s * batch:(s + 1) * batch]:
            loss = net(torch.tensor([ex.ids]), ex.start) / batch
            loss.backward()
            toks += len(ex.ids)
            mem.sample()
        torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step_times.append(time.perf_counter() - t)
        step_cpu.append(time.process_time() - c)
        step_tokens.append(toks)
    timed = slice(1, None) if len(step_times) > 1 else slice(None)  # the first step warms up allocators
    train_tps = sum(step_tokens[timed]) / sum(step_times[timed])
    train_tpcpu = sum(step_tokens[timed]) / sum(step_cpu[timed])
    net.eval()
    t = time.perf_counter()
    with torch.no_grad():
        for ex in examples:
            net(torch.tensor([ex.ids]), ex.start)
    eval_tps = sum(len(e.ids) for e in examples) / (time.perf_counter() - t)
    return {"load_s": round(load_s, 1), "steps": len(step_times), "samples": len(examples),
            "tokens": sum(step_tokens), "mean_len": round(sum(step_tokens) / len(examples)),
            "train_tokens_per_s": round(train_tps, 1), "train_tokens_per_cpu_s": round(train_tpcpu, 1),
            "step_s": [round(x, 1) for x in step_times], "step_cpu_s": [round(x, 1) for x in step_cpu],
            "eval_tokens_per_s": round(eval_tps, 1), "peak_rss_after_load_mb": round(peak_after_load),
            **{k: v for k, v in mem.report().items() if v is not None}}


def sweep(args: argparse.Namespace) -> None:
    names = args.variants.split(",") if args.variants else list(SWEEP)
    results = []
    started = load_avg()
    for name in names:
        dtype, layers, ckpt, batch, length = SWEEP[name]
        spec = {"model": args.model, "data": args.data, "dtype": dtype, "num_layers": layers, "ckpt": ckpt,
                "batch_size": batch, "samples": args.samples, "length": length, "steps": 2, "threads": args.threads}
        before = load_avg()
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                              check=False, env=env)
        row = {"name": name, **{k: v for k, v in spec.items() if k not in ("model", "data")}, "load_before": before,
               "load_after": load_avg()}
        if proc.returncode:
            row["error"] = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else f"exit {proc.returncode}"
        else:
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        results.append(row)
        _write_sweep(args, started, results)
        print(f"{name:20s} train {row.get('train_tokens_per_s', 0):7.1f} tok/s ({row.get('train_tokens_per_cpu_s', 0):6.1f} per "
              f"CPU-s)  eval {row.get('eval_tokens_per_s', 0):7.1f} "
              f"tok/s  peak {row.get('peak_rss_mb', 0):7.0f} MB (after load {row.get('peak_rss_after_load_mb', 0):5.0f})  "
              f"load {row['load_before'][0]:.1f}->{row['load_after'][0]:.1f}  {row.get('error', '')}", flush=True)


def _write_sweep(args: argparse.Namespace, started: list[float], results: list[dict]) -> None:
    """Written after every candidate, so a sweep cut short keeps what it measured."""
    out = {"model": args.model, "data": args.data, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "load_avg_start": started, "load_avg_end": load_avg(),
           "note": "each candidate in a fresh subprocess (ru_maxrss is its own); same samples; tokens/s excludes "
                   "the first optimizer step; 'eval' is a forward-only pass over the same samples; tokens per "
                   "CPU-second (2 torch threads) is less distorted by other jobs than wall-clock tokens/s",
           "command": " ".join(["python bench/train_bench.py", "--model", args.model, "--data", args.data, "--sweep",
                                "--samples", str(args.samples), "--threads", str(args.threads)]
                               + (["--variants", args.variants] if args.variants else [])),
           "results": results}
    Path(args.out or RESULTS / "train_sweep.json").write_text(json.dumps(out, indent=1))


def default_run(args: argparse.Namespace) -> None:
    """`mochi train project --data D --output A`, nothing else; wall time from the shell's point of view."""
    output = Path(args.output)
    cmd = [sys.executable, "-m", "mochi_cli.app", "train", "project", "--data", args.data, "--output", str(output)]
    start_load, t0 = load_avg(), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    end_load = load_avg()
    (output / "train_stderr.log").parent.mkdir(parents=True, exist_ok=True)
    (output / "train_stderr.log").write_text(proc.stderr)
    if proc.returncode:
        raise SystemExit(f"mochi train failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    rep = json.loads((output / "training.json").read_text())
    out = {"command": "mochi train project --data " + args.data + " --output " + str(output),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)", "wall_s": round(wall, 1),
           "load_avg_start": start_load, "load_avg_end": end_load, "stdout": proc.stdout.strip(),
           "progress_lines": sum(1 for ln in proc.stderr.splitlines() if ln.startswith("step ")),
           **{k: rep[k] for k in ("steps", "best_step", "first_val_loss", "best_val_loss", "stopped", "seconds",
                                  "tokens", "tokens_per_s", "memory", "budget")},
           "config": {k: rep["config"][k] for k in ("num_layers", "max_seq_len", "batch_size", "dtype", "max_minutes",
                                                     "grad_checkpointing", "eval_every", "eval_samples", "lr")},
           "data": {k: rep["data"][k] for k in ("dir", "repo", "train_samples")},
           "val_history": [h for h in rep["history"] if "val_loss" in h]}
    Path(args.out or RESULTS / "train_default.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "stdout"}, indent=1))


def compare(args: argparse.Namespace) -> None:
    examples = _examples(args.model, args.data, args.samples)
    results = [run(v, args.model, examples, args.dtype) for v in args.variants.split(",")]
    base = next(r["tokens_per_s"] for r in results if r["variant"] == "plain-peft")
    print(f"{'variant':12s} {'tokens':>7s} {'seconds':>8s} {'tok/s':>8s} {'vs plain':>8s}")
    for r in results:
        r["speedup_vs_plain"] = round(r["tokens_per_s"] / base, 2)
        print(f"{r['variant']:12s} {r['tokens']:7d} {r['seconds']:8.1f} {r['tokens_per_s']:8.1f} {r['speedup_vs_plain']:7.2f}x")
    from mochi_model.training.memory import peak_rss_mb

    out = {"model": args.model, "data": args.data, "dtype": args.dtype, "machine": platform.processor() or platform.machine(),
           "note": "shared 2-core CPU (other engineers' jobs running); ratios are the meaningful part",
           "load_avg_end": load_avg(), "peak_rss_mb_all_variants": round(peak_rss_mb()),
           "command": f"python bench/train_bench.py --model {args.model} --data {args.data} --samples {args.samples} --dtype {args.dtype}",
           "results": results}
    Path(args.out or RESULTS / "train_bench.json").write_text(json.dumps(out, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="", help="HF model folder (compare, sweep)")
    ap.add_argument("--data", help="a `mochi prepare` folder")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--variants", default="", help="compare: order to run them in (default plain-peft,mochi-all,mochi-last8); "
                                                  "sweep: candidate names (default all)")
    ap.add_argument("--sweep", action="store_true", help="candidate settings, each in its own process")
    ap.add_argument("--threads", type=int, default=0, help="sweep: torch threads per candidate (0 = torch default); "
                    "1 on a loaded machine: CPU-seconds per token then stay comparable (no OpenMP spin-waits)")
    ap.add_argument("--default-run", action="store_true", help="the full default `mochi train project` run")
    ap.add_argument("--output", default="", help="--default-run: adapter folder")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help="result JSON (default: bench/results/train_{bench,sweep,default}.json)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
    elif args.sweep:
        sweep(args)
    elif args.default_run:
        default_run(args)
    else:
        args.variants = args.variants or "plain-peft,mochi-all,mochi-last8"
        compare(args)


if __name__ == "__main__":
    main()
