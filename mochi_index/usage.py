"""Local log of shown/accepted/rejected suggestions (`.mochi/usage/events.jsonl`).

Owned by the LSP issue. Contract (one JSON object per line):
``{"ts": float, "event": "shown"|"accepted"|"rejected", "id": str, "path": str, "language": str,
"prefix": str (tail of prefix), "suffix": str (head of suffix), "text": str, "latency_ms": float}``.
Training reads accepted events as extra samples and rejected ones as hard negatives.
"""
