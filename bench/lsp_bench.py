"""Replay a typing trace through `mochi lsp` over stdio, as an editor would, and time it.

Phase 1 (typing): one keystroke every ``--interval`` s (default 0.1 = 10 keystrokes/s); each is a
``didChange`` followed by an inline-completion request; like VS Code, a new keystroke cancels the
request still in flight (``$/cancelRequest``). Reported: latency p50/p95 per *shown* suggestion,
share of requests cancelled / superseded / served from the type-ahead cache, and CPU time the
server spent on generations that were then cancelled.

Phase 2 (overhead): the same document states one at a time, through the server (fresh document
each, so no cache) and by calling the engine directly in-process (same prompt builder, same engine
settings). ``protocol overhead = p50(server) - p50(direct)``; target ≤ 10 ms.

The fake engine is an oracle (it answers with the rest of the source line), so its cache share is
an upper bound: a real model's suggestions are typed through less often.

    python bench/lsp_bench.py                       # fake engine (~15 ms/token), 150 keystrokes
    python bench/lsp_bench.py --real --keystrokes 40  # Qwen2.5-Coder-0.5B through mochi_model.loader

Writes ``bench/results/lsp_bench[_real].json``. The machine is shared: absolute numbers move with
its load; the overhead is a difference measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import DEFAULT_MODEL, pct  # noqa: E402 - bench/ is the script's folder


def make_trace(source: Path, keystrokes: int, start_line: int) -> tuple[str, list[tuple[int, int, str]]]:
    """The document before typing, and (line, character, char) per keystroke."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    start_line = min(start_line, max(0, len(lines) - 1))
    region = "".join(lines[start_line:])[:keystrokes]
    before = "".join(lines[:start_line])
    after = "".join(lines[start_line:])[len(region):]
    steps, line, col = [], start_line, 0
    for ch in region:
        steps.append((line, col, ch))
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
    return before + after, steps


def states(initial: str, steps: list[tuple[int, int, str]], start_offset: int) -> list[tuple[str, int, int, int]]:
    """(text, offset, line, character) after each keystroke."""
    out, text, off = [], initial, start_offset
    for line, col, ch in steps:
        text = text[:off] + ch + text[off:]
        off += 1
        nl, nc = (line + 1, 0) if ch == "\n" else (line, col + 1)
        out.append((text, off, nl, nc))
    return out


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def start_server(root: Path, cmd: list[str], options: dict[str, Any]) -> LanguageClient:
    client = LanguageClient("mochi-bench", "1")
    for method in ("mochi/status", types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE):
        client.feature(method)(lambda *a: None)
    await client.start_io(*cmd)
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(inline_completion=types.InlineCompletionClientCapabilities()),
        window=types.WindowClientCapabilities(work_done_progress=False))
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=root.as_uri(), initialization_options=options,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)]))
    client.initialized(types.InitializedParams())
    return client


async def status(client: LanguageClient) -> dict[str, Any]:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="mochi.status", arguments=[]))


async def wait_ready(client: LanguageClient, timeout_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        st = await status(client)
        if st["engine"] in ("ready", "failed"):
            return st
        await asyncio.sleep(0.2)
    raise TimeoutError("the model did not load in time")


def inline_params(uri: str, line: int, col: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


async def typing_phase(client: LanguageClient, pid: int, uri: str, initial: str, steps: list, interval: float,
                       client_cancel: bool) -> dict[str, Any]:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=0, text=initial)))
    st0, cpu0 = await status(client), proc_cpu_s(pid)
    outcomes: list[dict[str, Any]] = []
    pending: tuple[asyncio.Future, str] | None = None
    t_start = time.perf_counter()

    async def request(line: int, col: int, record: dict[str, Any]) -> None:
        msg_id = record["id"]
        t0 = time.perf_counter()
        try:
            res = await client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                                           inline_params(uri, line, col), msg_id=msg_id)
            record["latency_ms"] = (time.perf_counter() - t0) * 1000
            record["shown"] = bool(res and res.items and res.items[0].insert_text)
        except JsonRpcException:
            record["cancelled"] = True

    for i, (line, col, ch) in enumerate(steps):
        await asyncio.sleep(max(0.0, t_start + i * interval - time.perf_counter()))
        if pending is not None and not pending[0].done() and client_cancel:
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[1]))
        pos = types.Position(line=line, character=col)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=i + 1),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=ch)]))
        nl, nc = (line + 1, 0) if ch == "\n" else (line, col + 1)
        record = {"id": f"k{i}", "shown": False, "cancelled": False}
        outcomes.append(record)
        pending = (asyncio.ensure_future(request(nl, nc, record)), record["id"])
    await asyncio.gather(*[asyncio.sleep(0)], pending[0] if pending else asyncio.sleep(0))
    st1, cpu1 = await status(client), proc_cpu_s(pid)
    # Close it: its last edit would otherwise be "recent" context in every later prompt.
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    n = len(outcomes)
    shown = [o["latency_ms"] for o in outcomes if o["shown"]]
    delta = {k: st1[k] - st0[k] for k in ("requests", "superseded", "cancelled", "debounced", "generated",
                                           "cache_hits", "cancelled_generations", "cancelled_cpu_s")}
    return {
        "keystrokes": n, "interval_s": interval, "client_cancels": client_cancel,
        "shown": len(shown), "latency_shown_ms": {"p50": pct(shown, 0.50), "p95": pct(shown, 0.95)},
        "share_cancelled": (delta["cancelled"] + delta["superseded"]) / n,
        "share_from_cache": delta["cache_hits"] / n,
        "share_debounced": delta["debounced"] / n,
        "generations": delta["generated"], "cancelled_generations": delta["cancelled_generations"],
        "cpu_wasted_on_cancelled_s": round(delta["cancelled_cpu_s"], 3),
        "server_cpu_s": round(cpu1 - cpu0, 3), "wall_s": round(time.perf_counter() - t_start, 3),
    }


async def one_via_server(client: LanguageClient, root: Path, i: int,
                         sample: tuple[str, int, int, int]) -> tuple[float, str]:
    text, _off, line, col = sample
    uri = (root / f"sample_{i}.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=0, text=text)))
    t0 = time.perf_counter()
    res = await client.text_document_inline_completion_async(inline_params(uri, line, col))
    ms = (time.perf_counter() - t0) * 1000
    text = res.items[0].insert_text if res and res.items else ""
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    return ms, text if isinstance(text, str) else text.value


def one_direct(engine: Any, i: int, sample: tuple[str, int, int, int], options: dict[str, Any]) -> tuple[float, str]:
    """What the server does for one request, minus the protocol: prompt assembly + engine."""
    from mochi_core.config import config_from_dict
    from mochi_model.context import build_fim_request
    from mochi_model.types import CancelToken

    comp = config_from_dict(options)[0].completion
    text, off, _line, _col = sample
    t0 = time.perf_counter()
    req = build_fim_request(text, off, path=f"sample_{i}.py", language="python", config=comp,
                            count_tokens=engine.count_tokens)
    res = engine.complete_fim(req.prefix, req.suffix, req.snippets, max_tokens=comp.max_tokens,
                        temperature=comp.temperature,
                        multiline={"always": True, "never": False}.get(comp.multiline, req.multiline),
                        cancel=CancelToken(), time_budget_s=comp.time_budget_ms / 1000,
                        path=f"sample_{i}.py", language="python")
    return (time.perf_counter() - t0) * 1000, res.text


def load_direct_engine(args: argparse.Namespace, root: Path, options: dict[str, Any]) -> Any:
    if args.real:
        from mochi_core.config import config_from_dict
        from mochi_model.loader import load_engine

        return load_engine(config_from_dict(options)[0], root)
    from mochi_ls.fake_engine import fake_engine_factory

    return fake_engine_factory(json.dumps({"oracle": str(args.source), "delay": args.token_delay}))()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", action="store_true", help="use the real model (mochi_model.loader) instead of the fake")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model for --real (GGUF or HF folder)")
    ap.add_argument("--source", type=Path, default=Path(json.decoder.__file__), help="file whose typing is replayed")
    ap.add_argument("--start-line", type=int, default=70)
    ap.add_argument("--keystrokes", type=int, default=150)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between keystrokes")
    ap.add_argument("--debounce-ms", type=int, default=0, help="server debounce during typing (phase 1)")
    ap.add_argument("--samples", type=int, default=30, help="document states timed one by one (phase 2)")
    ap.add_argument("--token-delay", type=float, default=0.015, help="fake engine: seconds per token")
    ap.add_argument("--no-client-cancel", action="store_true", help="rely on server-side superseding only")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mochi-lsp-bench-"))
    (root / ".mochi").mkdir()
    base_opts: dict[str, Any] = {"server": {"index_on_start": False, "log_usage": False},
                                 "completion": {"max_tokens": 24, "multiline": "never"}}
    if args.real:
        base_opts["model"] = {"path": str(args.model)}
        cmd = [sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio"]
    else:
        cmd = [sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio", "--fake-engine",
               json.dumps({"oracle": str(args.source), "delay": args.token_delay})]
    typing_opts = json.loads(json.dumps(base_opts))
    typing_opts["completion"]["debounce_ms"] = args.debounce_ms
    seq_opts = json.loads(json.dumps(base_opts))
    seq_opts["completion"]["debounce_ms"] = 0

    initial, steps = make_trace(args.source, args.keystrokes, args.start_line)
    start_offset = sum(len(x) for x in initial.splitlines(keepends=True)[: args.start_line])
    all_states = states(initial, steps, start_offset)
    every = max(1, len(all_states) // args.samples)
    samples = all_states[::every][: args.samples]

    client = await start_server(root, cmd, typing_opts)
    pid = client._server.pid  # type: ignore[union-attr]
    st = await wait_ready(client, 900)
    if st["engine"] != "ready":
        raise SystemExit(f"engine failed: {st['engine_error']}")
    typing = await typing_phase(client, pid, (root / "typed.py").as_uri(), initial, steps, args.interval,
                                not args.no_client_cancel)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=seq_opts))
    engine = load_direct_engine(args, root, seq_opts)
    # Interleaved (server, direct) per document state, after one warm-up each, so that load on the
    # shared machine hits both sides alike.
    await one_via_server(client, root, -1, samples[0])
    one_direct(engine, -1, samples[0], seq_opts)
    server_ms, direct_ms, same_text = [], [], 0
    for i, sample in enumerate(samples):
        ms_server, text_server = await one_via_server(client, root, i, sample)
        ms_direct, text_direct = one_direct(engine, i, sample, seq_opts)
        server_ms.append(ms_server)
        direct_ms.append(ms_direct)
        same_text += text_server == text_direct
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    shutil.rmtree(root, ignore_errors=True)

    overhead = {"server_p50_ms": pct(server_ms, 0.50), "direct_p50_ms": pct(direct_ms, 0.50),
                "server_p95_ms": pct(server_ms, 0.95), "direct_p95_ms": pct(direct_ms, 0.95)}
    overhead["overhead_p50_ms"] = overhead["server_p50_ms"] - overhead["direct_p50_ms"]
    overhead["ratio_p50"] = overhead["server_p50_ms"] / overhead["direct_p50_ms"]
    overhead["same_text"] = f"{same_text}/{len(samples)}"  # both sides must produce the same suggestion
    result = {"engine": "real" if args.real else "fake", "model": str(args.model) if args.real else "fake",
              "source": str(args.source), "typing": typing, "overhead": overhead, "samples": len(samples),
              "command": "python bench/lsp_bench.py " + " ".join(sys.argv[1:]),
              "note": "2-core machine shared with other work; absolute times vary with its load"}
    rows = [
        ("keystrokes (interval s)", f"{typing['keystrokes']} ({typing['interval_s']})"),
        ("suggestions shown", typing["shown"]),
        ("latency per shown suggestion p50 / p95 ms", f"{typing['latency_shown_ms']['p50']:.1f} / {typing['latency_shown_ms']['p95']:.1f}"),
        ("share cancelled or superseded", f"{typing['share_cancelled']:.0%}"),
        ("share served from type-ahead cache", f"{typing['share_from_cache']:.0%}"),
        ("generations (cancelled mid-way)", f"{typing['generations']} ({typing['cancelled_generations']})"),
        ("CPU s wasted on cancelled generations", typing["cpu_wasted_on_cancelled_s"]),
        ("server CPU s during typing", typing["server_cpu_s"]),
        ("one-by-one p50 via server / direct ms", f"{overhead['server_p50_ms']:.1f} / {overhead['direct_p50_ms']:.1f}"),
        ("same suggestion via server and direct", overhead["same_text"]),
        ("protocol overhead p50 ms (target <= 10)", f"{overhead['overhead_p50_ms']:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"mochi lsp bench ({result['engine']} engine, {len(samples)} samples)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    out = REPO / "bench" / "results" / ("lsp_bench_real.json" if args.real else "lsp_bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    asyncio.run(main())
