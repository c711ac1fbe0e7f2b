"""Training throughput: Mochi's LoRA step vs a plain PEFT loop on the same samples, same run.

Both sides train the same LoRA (rank, targets) with AdamW on the same prepared samples, one sample
per micro-step. The plain loop is the textbook one: ``model(input_ids, labels=...)`` with the
prompt masked to -100, so logits for every position go through the vocabulary head. Mochi's step
computes logits only for completion positions and can adapt only the last N layers (backward
stops there). Prints a table and writes ``bench/results/train_bench.json``.

    python bench/train_bench.py --model /path/to/hf-folder --data DIR --samples 4

Numbers on a shared CPU are noisy: compare the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def _lora(model, num_layers: int):
    from peft import LoraConfig, get_peft_model

    from mochi_model.training.config import DEFAULT_TARGETS

    n = int(model.config.num_hidden_layers)
    layers = list(range(n - num_layers, n)) if num_layers > 0 else None
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=list(DEFAULT_TARGETS),
                                            layers_to_transform=layers))


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="a `mochi prepare` folder")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--variants", default="plain-peft,mochi-all,mochi-last8", help="order to run them in (first is the baseline)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_bench.json"))
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from mochi_model.training.dataset import read_jsonl, tokenize

    rows = read_jsonl(Path(args.data) / "train.jsonl")
    tok = AutoTokenizer.from_pretrained(args.model)
    examples, _ = tokenize(rows, tok, 1024)
    examples = examples[: args.samples]
    results = [run(v, args.model, examples, args.dtype) for v in args.variants.split(",")]
    base = next(r["tokens_per_s"] for r in results if r["variant"] == "plain-peft")
    print(f"{'variant':12s} {'tokens':>7s} {'seconds':>8s} {'tok/s':>8s} {'vs plain':>8s}")
    for r in results:
        r["speedup_vs_plain"] = round(r["tokens_per_s"] / base, 2)
        print(f"{r['variant']:12s} {r['tokens']:7d} {r['seconds']:8.1f} {r['tokens_per_s']:8.1f} {r['speedup_vs_plain']:7.2f}x")
    out = {"model": args.model, "data": args.data, "dtype": args.dtype, "machine": platform.processor() or platform.machine(),
           "note": "shared 2-core CPU (other engineers' jobs running); ratios are the meaningful part",
           "command": f"python bench/train_bench.py --model {args.model} --data {args.data} --samples {args.samples} --dtype {args.dtype}",
           "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
