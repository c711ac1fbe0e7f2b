"""Replay a typing trace through the real `mochi lsp` over stdio, as an editor does, and time the pauses.

The project is a copy of an installed package we did not write (default ``rich``); the server indexes
it on start, so prompts carry retrieved context as in real use. A few *held-out* files (chosen by a
fixed seed; no adapter here was trained on this package) get a trace of *sites*: at each site the
editor jumps there (another place in the file, or another file), the rest of one code line is
deleted, and the person re-types it at ``--interval`` s per key (default 0.1 = 10 keys/s):

* **jump**: ``--jump-chars`` keys (default 4) right after arriving, then a pause;
* **continue**: ``--continue-chars`` more keys (default 8) on the same line, then a pause, ``--continues``
  times per site (typing on at a place the server has just seen).

Every key is a ``didChange`` followed by ``textDocument/inlineCompletion``; the request still in flight
is cancelled first (``$/cancelRequest``), as VS Code does. A *pause* waits for the answer to the last
key's request: its latency (last keystroke → answer) and whether it had a suggestion are what is
reported, per kind (jump / continue). Nothing is cut on the client side: a pause waits up to
``--pause-timeout-s`` for the server.

Phases (same trace, same server, type-ahead cache cleared in between):

* ``quiet``: the machine as it is (its load average is recorded);
* ``hog``: a bounded busy loop on every core (``multiprocessing``; started before, stopped after the
  phase, killed at exit at the latest) — the share of pauses that got a suggestion within 2 s.

``--backend torch --backend llama`` runs the whole thing once per backend (``[model] backend`` in the
server's settings; a backend that fails to load is reported, not fatal) and prints ratios.

    python bench/lsp_bench.py                          # real model, torch, 10 sites, quiet + hog
    python bench/lsp_bench.py --backend torch --backend llama
    python bench/lsp_bench.py --fake --sites 3         # fake engine: checks the bench itself in seconds

Prints a table and writes ``bench/results/lsp_bench.json`` (``lsp_bench_fake.json`` with ``--fake``).
The 2-core machine is shared: absolute numbers move with its load, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import DEFAULT_MODEL, package_dir, pct  # noqa: E402 - bench/ is the script's folder

from mochi_model.eval.metrics import edit_similarity, normalize  # noqa: E402

WITHIN_S = 2.0  # "a suggestion within 2 s" (issue 13's target under load)


# --- the trace ---------------------------------------------------------------------------------

@dataclass
class Site:
    file: str  # project-relative
    line: int
    indent: int
    text: str  # the original line


@dataclass
class Segment:
    site: int
    kind: str  # jump | continue
    start: int  # column where typing starts
    chars: str


def candidate_lines(lines: list[str]) -> list[int]:
    """Code lines worth re-typing: indented statements of 24–70 characters, no comments/strings."""
    return [i for i, ln in enumerate(lines) if 24 <= len(ln.strip()) <= 70 and ln.startswith("        ")
            and not ln.strip().startswith(("#", '"', "'", "@")) and not ln.rstrip().endswith("\\")]


def pick_files(root: Path, n: int, seed: int) -> list[str]:
    """``n`` held-out files: a seeded draw among the package's modules with enough code lines."""
    pool = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                  if "__pycache__" not in p.parts and len(candidate_lines(p.read_text(encoding="utf-8").split("\n"))) >= 30)
    rng = random.Random(seed)
    return sorted(rng.sample(pool, min(n, len(pool))))


def make_trace(root: Path, files: list[str], sites: int, jump_chars: int, continue_chars: int, continues: int,
               seed: int) -> tuple[list[Site], list[Segment]]:
    """Sites spread over ``files`` (alternating file, and far apart within one), and their segments."""
    rng = random.Random(seed + 1)
    per_file: dict[str, list[int]] = {}
    for f in files:
        lines = (root / f).read_text(encoding="utf-8").split("\n")
        cands = [i for i in candidate_lines(lines) if len(lines[i].strip()) >= jump_chars + continues * continue_chars]
        rng.shuffle(cands)
        per_file[f] = cands
    out_sites: list[Site] = []
    segs: list[Segment] = []
    for k in range(sites):
        f = files[k % len(files)]
        if not per_file[f]:
            continue
        i = per_file[f].pop()
        line = (root / f).read_text(encoding="utf-8").split("\n")[i]
        indent = len(line) - len(line.lstrip())
        out_sites.append(Site(file=f, line=i, indent=indent, text=line))
        s = len(out_sites) - 1
        body = line[indent:]
        segs.append(Segment(site=s, kind="jump", start=indent, chars=body[:jump_chars]))
        col = indent + jump_chars
        for _ in range(continues):
            piece = line[col: col + continue_chars]
            if not piece:
                break
            segs.append(Segment(site=s, kind="continue", start=col, chars=piece))
            col += len(piece)
    return out_sites, segs


# --- CPU hog -----------------------------------------------------------------------------------

def _busy(deadline: float, stop: Any) -> None:
    x = 1
    while time.time() < deadline and not stop.is_set():
        for _ in range(200_000):
            x = (x * 48271) % 2147483647


class CpuHog:
    """A busy loop on ``n`` processes, bounded by ``max_s`` even if nobody stops it."""

    def __init__(self, n: int, max_s: float) -> None:
        self.n, self.max_s = n, max_s
        self.ctx = mp.get_context("spawn")
        self.stop_event = self.ctx.Event()
        self.procs: list[Any] = []

    def start(self) -> None:
        deadline = time.time() + self.max_s
        self.procs = [self.ctx.Process(target=_busy, args=(deadline, self.stop_event), daemon=True)
                      for _ in range(self.n)]
        for p in self.procs:
            p.start()

    def stop(self) -> None:
        self.stop_event.set()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.procs = []


# --- driving the server ------------------------------------------------------------------------

def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return float("nan")


@dataclass
class Server:
    client: LanguageClient
    pid: int
    messages: list[str] = field(default_factory=list)
    # (arrival time, mochi/status params) of each status notification that carried request timings
    timings: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


#: Parts of a request's time the server reports (mochi/status "timings"), summarised per phase.
SERVER_PARTS = ("before_engine_ms", "wait_ms", "fit_ms", "prefill_ms", "decode_ms", "engine_ms",
                "prompt_tokens", "cached_tokens", "completion_tokens", "prompt_fit")


def _plain(obj: Any) -> Any:
    """pygls hands custom notifications over as attribute objects: back to dicts and lists."""
    if hasattr(obj, "_asdict"):
        obj = obj._asdict()
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        obj = vars(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


async def _drain(stream: Any, sink: Path | None) -> None:
    """Read the server's stderr (pygls pipes it and never reads it: a full pipe would block the server)."""
    out = open(sink, "ab") if sink is not None else None  # noqa: SIM115 - closed below
    try:
        while chunk := await stream.read(65536):
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()


async def start_server(root: Path, cmd: list[str], options: dict[str, Any], *, env: dict[str, str] | None = None,
                       stderr_to: Path | None = None) -> Server:
    client = LanguageClient("mochi-bench", "1")
    messages: list[str] = []
    timings: list[tuple[float, dict[str, Any]]] = []

    def on_status(ls: Any, params: Any) -> None:
        got = _plain(params)
        if isinstance(got, dict) and got.get("timings"):
            timings.append((time.perf_counter(), {**got["timings"], "budget_cut": got.get("budget_cut", False)}))

    client.feature("mochi/status")(on_status)
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda ls, p: messages.append(p.message))
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda ls, p: messages.append(p.message))
    await client.start_io(*cmd, env={**os.environ, **(env or {})})
    client._async_tasks.append(asyncio.ensure_future(_drain(client._server.stderr, stderr_to)))  # type: ignore[union-attr]
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(inline_completion=types.InlineCompletionClientCapabilities()),
        window=types.WindowClientCapabilities(work_done_progress=False))
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=root.as_uri(), initialization_options=options,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)]))
    client.initialized(types.InitializedParams())
    return Server(client=client, pid=client._server.pid, messages=messages,  # type: ignore[union-attr]
                  timings=timings)


async def status(client: LanguageClient) -> dict[str, Any]:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="mochi.status", arguments=[]))


async def wait_ready(client: LanguageClient, timeout_s: float) -> dict[str, Any]:
    """Until the model loaded (or failed) and the start-up index is done."""
    t0 = time.monotonic()
    st: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout_s:
        st = await status(client)
        if st["engine"] == "failed" or (st["engine"] == "ready" and st["index"]["ready"]):
            return st
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the server was not ready in {timeout_s:.0f} s: {st}")


def inline_params(uri: str, line: int, col: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


class Editor:
    """Open documents, versions, and the one inline request in flight (cancelled by the next key)."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client, self.root = client, root
        self.versions: dict[str, int] = {}
        self.pending: tuple[asyncio.Future[Any], str, float] | None = None
        self.seq = 0

    def uri(self, rel: str) -> str:
        return (self.root / rel).as_uri()

    def open(self, rel: str) -> None:
        uri = self.uri(rel)
        self.versions[uri] = 0
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=0, text=(self.root / rel).read_text(encoding="utf-8"))))

    def close_all(self) -> None:
        for uri in list(self.versions):
            self.client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))
        self.versions.clear()

    def edit(self, rel: str, line: int, start: int, end: int, text: str) -> None:
        uri = self.uri(rel)
        self.versions[uri] += 1
        rng = types.Range(start=types.Position(line=line, character=start), end=types.Position(line=line, character=end))
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    def key(self, rel: str, line: int, col: int, ch: str) -> None:
        """One keystroke at (line, col): cancel the request in flight, edit, ask for a suggestion."""
        if self.pending is not None and not self.pending[0].done():
            self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=self.pending[1]))
        self.edit(rel, line, col, col, ch)
        self.seq += 1
        msg_id = f"k{self.seq}"
        fut = asyncio.ensure_future(self.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(self.uri(rel), line, col + 1), msg_id=msg_id))
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # cancelled ones: seen, not raised
        self.pending = (fut, msg_id, time.perf_counter())

    async def pause(self, timeout_s: float) -> dict[str, Any]:
        """Wait for the last key's answer: latency from the last keystroke, and the suggestion."""
        assert self.pending is not None
        fut, _msg_id, t0 = self.pending
        try:
            res = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            return {"latency_ms": timeout_s * 1000, "text": "", "timed_out": True}
        except JsonRpcException as exc:
            return {"latency_ms": (time.perf_counter() - t0) * 1000, "text": "", "error": str(exc)}
        ms = (time.perf_counter() - t0) * 1000
        items = res.items if isinstance(res, types.InlineCompletionList) else (res or [])
        text = items[0].insert_text if items else ""
        return {"latency_ms": ms, "text": text if isinstance(text, str) else text.value}


async def run_phase(server: Server, root: Path, sites: list[Site], segs: list[Segment], args: argparse.Namespace,
                    phase: str) -> dict[str, Any]:
    client = server.client
    ed = Editor(client, root)
    for f in sorted({s.file for s in sites}):
        ed.open(f)
    st0, cpu0, load0 = await status(client), proc_cpu_s(server.pid), load_avg()
    pauses: list[dict[str, Any]] = []
    col_of: dict[int, int] = {}
    t_start = time.perf_counter()
    for n, seg in enumerate(segs):
        site = sites[seg.site]
        if seg.kind == "jump":
            # Arrive: the rest of the line goes (one edit, as a selection + delete would).
            ed.edit(site.file, site.line, site.indent, len(site.text), "")
            col_of[seg.site] = site.indent
        t_next = time.perf_counter()
        for ch in seg.chars:
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
            ed.key(site.file, site.line, col_of[seg.site], ch)
            col_of[seg.site] += 1
            t_next += args.interval
        t_key = ed.pending[2] if ed.pending is not None else 0.0
        got = await ed.pause(args.pause_timeout_s)
        got.update(kind=seg.kind, site=seg.site, file=site.file, line=site.line, typed=seg.chars)
        # what the person would have typed next: the rest of the original line
        truth = site.text[col_of[seg.site]:]
        first = got["text"].split("\n", 1)[0]
        got["exact"] = bool(first.strip()) and normalize(first) == normalize(truth)
        got["es"] = round(edit_similarity(first, truth), 3) if first.strip() else 0.0
        # the server's account of the answer (mochi/status, sent just before it): the last since the key
        told = [t for at, t in server.timings if at >= t_key]
        if told:
            got["server"] = told[-1]
        pauses.append(got)
        if args.read_s:
            await asyncio.sleep(args.read_s)
        last_of_site = n + 1 == len(segs) or segs[n + 1].site != seg.site
        if last_of_site:  # the person finishes the line (no request) and moves on
            col = col_of[seg.site]
            ed.edit(site.file, site.line, col, col, site.text[col:])
        if args.verbose:
            sv = got.get("server", {})
            parts = " ".join(f"{k.removesuffix('_ms')} {sv[k]:.0f}" for k in SERVER_PARTS if k in sv)
            print(f"    {phase} {seg.kind:8} {site.file}:{site.line + 1} {got['latency_ms']:7.0f} ms "
                  f"{got['text'][:40]!r} [{parts}]", flush=True)
    st1, cpu1, load1 = await status(client), proc_cpu_s(server.pid), load_avg()
    ed.close_all()
    out: dict[str, Any] = {"phase": phase, "load_before": load0, "load_after": load1,
                           "wall_s": round(time.perf_counter() - t_start, 1),
                           "server_cpu_s": round(cpu1 - cpu0, 2),
                           "requests": st1["requests"] - st0["requests"],
                           "generated": st1["generated"] - st0["generated"],
                           "cache_hits": st1["cache_hits"] - st0["cache_hits"]}
    b0, b1 = st0.get("budget") or {}, st1.get("budget") or {}
    out["budget_cut"] = b1.get("cut", 0) - b0.get("cut", 0)
    out["budget_expired"] = b1.get("expired", 0) - b0.get("expired", 0)
    out["prompt_trimmed"] = b1.get("trimmed", 0) - b0.get("trimmed", 0)
    g0, g1 = st0.get("prompt_growths") or {}, st1.get("prompt_growths") or {}
    out["prompt_growths"] = {k: g1.get(k, 0) - g0.get(k, 0) for k in g1 if g1.get(k, 0) - g0.get(k, 0)}
    for kind in ("jump", "continue", "all"):
        ps = [p for p in pauses if kind == "all" or p["kind"] == kind]
        lat = [p["latency_ms"] for p in ps]
        shown = [p for p in ps if p["text"].strip()]
        out[kind] = {
            "pauses": len(ps),
            "p50_ms": pct(lat, 0.50), "p95_ms": pct(lat, 0.95),
            "share_suggested": len(shown) / len(ps) if ps else float("nan"),
            "share_suggested_within_2s": (sum(1 for p in shown if p["latency_ms"] <= WITHIN_S * 1000) / len(ps)
                                          if ps else float("nan")),
            "p50_ms_suggested": pct([p["latency_ms"] for p in shown], 0.50),
            # in-editor accuracy: the suggestion's first line vs the rest of the original line
            # (an empty answer scores 0) — what the budget's prompt fit costs, unlike the eval's EM
            "exact_match": sum(p["exact"] for p in ps) / len(ps) if ps else float("nan"),
            "edit_similarity": sum(p["es"] for p in ps) / len(ps) if ps else float("nan"),
            # medians of the server's timings (mochi/status) over the pauses that generated
            "server_p50": {part: pct([p["server"][part] for p in ps if "server" in p], 0.50)
                           for part in SERVER_PARTS},
        }
    out["pauses_detail"] = [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in p.items()} for p in pauses]
    return out


async def run_backend(backend: str, root: Path, sites: list[Site], segs: list[Segment],
                      args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"server": {"index_on_start": True, "log_usage": False}, "completion": {}}
    if args.debounce_ms is not None:
        opts["completion"]["debounce_ms"] = args.debounce_ms
    if args.time_budget_ms is not None:
        opts["completion"]["time_budget_ms"] = args.time_budget_ms
    if args.no_grow:
        opts["completion"]["grow_when_idle"] = False
    cmd = [sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio"]
    stderr_to = None
    if args.server_log is not None:
        cmd += ["--log-file", str(args.server_log.with_suffix(f".{backend}.log"))]
        stderr_to = args.server_log.with_suffix(f".{backend}.stderr")
    env = dict(kv.split("=", 1) for kv in args.server_env)
    if args.fake:
        cmd += ["--fake-engine", json.dumps({"answer": "return self._value  # fake", "delay": args.token_delay})]
    else:
        opts["model"] = {"path": str(args.model), "backend": backend}
    t0 = time.perf_counter()
    server = await start_server(root, cmd, opts, env=env, stderr_to=stderr_to)
    result: dict[str, Any] = {"backend": backend if not args.fake else "fake", "server_env": env}
    try:
        st = await wait_ready(server.client, args.ready_timeout_s)
        result["ready_s"] = round(time.perf_counter() - t0, 1)
        result["model"] = st.get("model", "")
        result["adapters"] = st.get("adapters", [])
        rejected = [m for m in server.messages if "model.backend" in m]
        if st["engine"] != "ready" or rejected:
            result["error"] = st.get("engine_error") or "; ".join(rejected)
            print(f"  backend {backend}: not available ({result['error']})", flush=True)
            return result
        print(f"  backend {backend}: ready in {result['ready_s']} s ({result['model']}, adapters "
              f"{result['adapters'] or 'none'}); load {load_avg()}",
              flush=True)
        result["config"] = st.get("config", {})
        phases = ["quiet"] + (["hog"] if not args.no_hog else [])
        for phase in phases:
            # Same trace again: drop cached suggestions (settings change clears the type-ahead cache).
            server.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=opts))
            hog = CpuHog(os.cpu_count() or 2, args.hog_max_s) if phase == "hog" else None
            try:
                if hog is not None:
                    hog.start()
                result[phase] = await run_phase(server, root, sites, segs, args, phase)
            finally:
                if hog is not None:
                    hog.stop()
            r = result[phase]
            print(f"  {backend} {phase}: jumps p50 {r['jump']['p50_ms']:.0f} ms, continue p50 "
                  f"{r['continue']['p50_ms']:.0f} ms, suggested {r['all']['share_suggested']:.0%}; "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)
        result["peak_rss_mb"] = round(proc_rss_mb(server.pid), 1)
        await server.client.shutdown_async(None)
        server.client.exit(None)
    finally:
        await server.client.stop()
    return result


def copy_project(package: str, dest: Path) -> Path:
    src = package_dir(package)
    root = dest / f"{package}-project"
    shutil.copytree(src, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / ".mochi").mkdir()
    return root


def write_adapters(root: Path, specs: list[str]) -> None:
    """``[ROLE=]PATH[:WEIGHT]`` entries -> the project's ``[[adapters]]`` (the stack every request runs with)."""
    lines = []
    for spec in specs:
        role, _, rest = spec.rpartition("=")
        path, _, weight = rest.rpartition(":") if ":" in rest else (rest, "", "")
        folder = Path(path or rest).resolve()
        if not (folder / "adapter_config.json").is_file():
            raise SystemExit(f"--adapter {spec}: {folder} has no adapter_config.json")
        lines += ["[[adapters]]", f"path = {json.dumps(str(folder))}", f"weight = {float(weight or 1.0)}",
                  f"role = {json.dumps(role or 'project')}", ""]
    if lines:
        (root / ".mochi" / "config.toml").write_text("\n".join(lines))


def table(results: list[dict[str, Any]]) -> list[str]:
    head = (f"{'backend':8} {'phase':6} {'kind':9} {'pauses':>6} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'suggested':>9} {'<=2 s':>6} {'EM':>5} {'ES':>5}")
    rows = [head, "-" * len(head)]
    for r in results:
        for phase in ("quiet", "hog"):
            if phase not in r:
                continue
            for kind in ("jump", "continue", "all"):
                k = r[phase][kind]
                rows.append(f"{r['backend']:8} {phase:6} {kind:9} {k['pauses']:>6} {k['p50_ms']:>8.0f} "
                            f"{k['p95_ms']:>8.0f} {k['share_suggested']:>9.0%} {k['share_suggested_within_2s']:>6.0%} "
                            f"{k.get('exact_match', float('nan')):>5.0%} {100 * k.get('edit_similarity', float('nan')):>5.1f}")
            rows.append(f"{'':8} {phase:6} budget cut {r[phase]['budget_cut']}, expired {r[phase]['budget_expired']}, "
                        f"prompts shrunk {r[phase].get('prompt_trimmed', 0)}, grown {r[phase].get('prompt_growths', {})}; "
                        f"load {r[phase]['load_before']} -> {r[phase]['load_after']}")
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", action="append", default=None, help="torch | llama | ... (repeatable; default torch)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model (GGUF or HF folder)")
    ap.add_argument("--fake", action="store_true", help="fake engine instead of a model (checks the bench itself)")
    ap.add_argument("--token-delay", type=float, default=0.015, help="--fake: seconds per token")
    ap.add_argument("--package", default="rich", help="installed package copied as the project")
    ap.add_argument("--files", type=int, default=3, help="held-out files the trace visits")
    ap.add_argument("--sites", type=int, default=10, help="jumps (places visited)")
    ap.add_argument("--jump-chars", type=int, default=4)
    ap.add_argument("--continue-chars", type=int, default=8)
    ap.add_argument("--continues", type=int, default=2, help="continue-typing pauses per site")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between keystrokes")
    ap.add_argument("--pause-timeout-s", type=float, default=20.0)
    ap.add_argument("--debounce-ms", type=int, default=None, help="default: the server's [completion] default")
    ap.add_argument("--time-budget-ms", type=int, default=None, help="default: the server's [completion] default")
    ap.add_argument("--no-hog", action="store_true", help="skip the CPU-hog phase")
    ap.add_argument("--read-s", type=float, default=0.0,
                    help="seconds the person reads each suggestion before typing on (idle time the server may use)")
    ap.add_argument("--no-grow", action="store_true", help="[completion] grow_when_idle = false")
    ap.add_argument("--hog-max-s", type=float, default=300.0, help="the hog ends by itself after this long")
    ap.add_argument("--ready-timeout-s", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per pause")
    ap.add_argument("--server-log", type=Path, default=None, help="server log files: PATH.BACKEND.log / .stderr")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the server (e.g. OMP_WAIT_POLICY=PASSIVE; repeatable)")
    ap.add_argument("--adapter", action="append", default=[], metavar="[ROLE=]PATH[:WEIGHT]",
                    help="adapter folder stacked on the model (repeatable: the stack, e.g. base=A:0.3 project=B:0.7), "
                         "written to the project's .mochi/config.toml as [[adapters]]")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    backends = args.backend or ["torch"]

    tmp = Path(tempfile.mkdtemp(prefix="mochi-lsp-bench-"))
    try:
        root = copy_project(args.package, tmp)
        write_adapters(root, args.adapter)
        files = pick_files(root, args.files, args.seed)
        sites, segs = make_trace(root, files, args.sites, args.jump_chars, args.continue_chars, args.continues,
                                 args.seed)
        print(f"trace: {len(sites)} sites over {', '.join(files)}; {len(segs)} pauses, "
              f"{sum(len(s.chars) for s in segs)} keystrokes at {1 / args.interval:.0f}/s; load {load_avg()}",
              flush=True)
        results = []
        for be in backends:  # the index built by the first server is re-used by the next
            results.append(await run_backend(be, root, sites, segs, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ok = [r for r in results if "quiet" in r]
    ratios: dict[str, Any] = {}
    if len(ok) > 1:
        ref = ok[0]
        for r in ok[1:]:
            ratios[f"{ref['backend']}/{r['backend']}"] = {
                f"{phase}_{kind}_p50": ref[phase][kind]["p50_ms"] / r[phase][kind]["p50_ms"]
                for phase in ("quiet", "hog") if phase in ref and phase in r for kind in ("jump", "continue")}
    result = {
        "command": "python bench/lsp_bench.py " + " ".join(sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPUs", "package": args.package, "files": files,
        "trace": {"sites": len(sites), "pauses": len(segs), "jump_chars": args.jump_chars,
                  "continue_chars": args.continue_chars, "continues": args.continues, "interval_s": args.interval,
                  "keystrokes": sum(len(s.chars) for s in segs)},
        "model": str(args.model) if not args.fake else "fake", "adapters": args.adapter, "results": results, "ratios_p50": ratios,
        "note": "latency = last keystroke -> the server's answer to that key's request (empty answers count); "
                "suggested = share of pauses whose answer was non-empty; <=2 s = share with a suggestion within 2 s; "
                "EM / ES = the suggestion's first line vs the rest of the original line (empty = 0)",
    }
    print()
    for row in table(ok):
        print(row)
    for name, rs in ratios.items():
        print(f"ratio {name}: " + ", ".join(f"{k} {v:.2f}x" for k, v in rs.items()))
    for r in results:
        if "error" in r:
            print(f"{r['backend']}: {r['error']}")
    out = args.out or REPO / "bench" / "results" / ("lsp_bench_fake.json" if args.fake else "lsp_bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
