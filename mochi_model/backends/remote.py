"""The ``remote`` text backend: decoding runs on an OpenAI-compatible completions server.

Works with any server that speaks ``POST /v1/completions`` with ``stream: true`` (server-sent
events): vLLM (LoRA adapters served as model names), llama.cpp's ``llama-server`` (``--lora``
files picked per request by index) and ``mlx_lm.server`` (an adapter folder per request in the
``adapters`` field). The engine builds the FIM prompt and post-processes the text exactly as it
does for local backends; this module only moves the prompt there and the text back.

Streaming is read event by event; cancellation, the time budget and stop rules are checked
between events, and stopping closes the connection (which is how a remote generation is
cancelled). Unreachable servers, HTTP errors and silences longer than the read timeout raise
:class:`~mochi_model.errors.ModelError` subclasses naming the URL and what to check.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mochi_model.backends.base import Backend, GenerationRequest, GenerationResult
from mochi_model.errors import BackendUnavailable, ModelError, ModelNotFound

logger = logging.getLogger(__name__)

ADAPTER_MODES = ("model", "adapters", "lora_id", "none")
# Server families and how each names the adapter of a request.
SERVERS = {"openai": "model", "vllm": "model", "llama.cpp": "lora_id", "mlx_lm": "adapters"}


class RemoteTimeout(ModelError):
    """The remote server did not answer (or went silent) within the read timeout."""


@dataclass(kw_only=True)
class RemoteSettings:
    """Where and how to reach the server (``options`` of :func:`load_backend`).

    Attributes:
        url: base URL such as ``http://127.0.0.1:8080`` (a trailing ``/v1`` is accepted).
        model: the ``model`` field (vLLM: served base name; mlx_lm.server: the model path/repo).
        server: ``openai`` (any), ``vllm``, ``llama.cpp`` or ``mlx_lm``: picks the default
            ``adapter_mode`` and works around known quirks (see :meth:`RemoteBackend.generate_text`).
        adapter: adapter used by requests (a name, a folder or a llama.cpp index, per ``adapter_mode``).
        adapter_mode: ``model`` (vLLM: the adapter *is* the model name), ``adapters`` (mlx_lm.server:
            adapter folder per request), ``lora_id`` (llama.cpp: ``lora: [{id, scale: 1}]``), ``none``;
            empty = the ``server``'s way.
        connect_timeout_s: how long to wait for the TCP connection.
        read_timeout_s: longest silence allowed (first token included) before giving up.
        extra_body: extra JSON fields sent with every request (server-specific knobs).
    """

    url: str
    model: str = "default_model"
    server: str = "openai"
    adapter: str | None = None
    adapter_mode: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    extra_body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], default_model: str = "default_model") -> RemoteSettings:
        """Settings from backend options (``remote_url`` is accepted for ``url``: the loader's key)."""
        opts = dict(options)
        if opts.get("remote_url") and not opts.get("url"):
            opts["url"] = opts["remote_url"]
        opts.pop("remote_url", None)
        known = {"url", "model", "server", "adapter", "adapter_mode", "connect_timeout_s", "read_timeout_s",
                 "extra_body"}
        unknown = sorted(set(opts) - known - {"tokenizer", "fim_format"})
        if unknown:
            raise ModelError(f"unknown remote backend option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if not opts.get("url"):
            raise ModelError("the remote backend needs a server URL: set [model] remote_url in .mochi/config.toml "
                             "(e.g. http://127.0.0.1:8080)")
        # mlx_lm.server loads whatever ``model`` names: by default ask for the model it was started with.
        opts.setdefault("model", "default_model" if opts.get("server") == "mlx_lm" else default_model)
        return cls(**{k: v for k, v in opts.items() if k in known})


class CompletionsClient:
    """A minimal streaming client for ``/v1/completions`` (stdlib ``http.client``, no dependencies)."""

    def __init__(self, settings: RemoteSettings) -> None:
        if settings.server not in SERVERS:
            raise ModelError(f"remote server must be one of {', '.join(SERVERS)}, got {settings.server!r}")
        settings.adapter_mode = settings.adapter_mode or SERVERS[settings.server]
        if settings.adapter_mode not in ADAPTER_MODES:
            raise ModelError(f"remote adapter_mode must be one of {', '.join(ADAPTER_MODES)}, got {settings.adapter_mode!r}")
        url = settings.url if "://" in settings.url else "http://" + settings.url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelError(f"remote_url {settings.url!r} is not an http(s) URL such as http://127.0.0.1:8080")
        self.settings = settings
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/').removesuffix('/v1')}/v1/completions"
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = urlsplit(self.endpoint).path

    def body(self, prompt: str, req: GenerationRequest, adapter: str | None, *, stream: bool = True) -> dict[str, Any]:
        """The JSON body of one request.

        Stop sequences are not sent: servers report ``finish_reason: "stop"`` for EOS and for a stop
        string alike, so they are applied here, and closing the stream ends the server's work.
        """
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "prompt": prompt, "max_tokens": max(1, req.max_tokens),
                                "temperature": float(req.temperature), "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if req.temperature > 0 and req.top_p < 1.0:
            body["top_p"] = float(req.top_p)
        if req.seed is not None:
            body["seed"] = int(req.seed)
        if adapter and s.adapter_mode == "model":
            body["model"] = adapter
        elif adapter and s.adapter_mode == "adapters":
            if s.model == "default_model":
                raise ModelError("mlx_lm server ignores per-request adapters for 'default_model'; set the remote "
                                 "option model to the path or repo the server was started with (--model)")
            body["adapters"] = adapter
        elif adapter and s.adapter_mode == "lora_id":
            body["lora"] = [{"id": int(adapter), "scale": 1.0}]
        body.update(s.extra_body)
        return body

    def connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host or "", self._port, timeout=self.settings.connect_timeout_s)

    def _open(self, conn: http.client.HTTPConnection, body: Mapping[str, Any]) -> http.client.HTTPResponse:
        read_s = self.settings.read_timeout_s
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_s)  # from here on, the limit is on silence, not connecting
            conn.request("POST", self._path, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
            resp = conn.getresponse()
        except TimeoutError as exc:
            raise RemoteTimeout(f"the completion server at {self.endpoint} did not answer within "
                                f"{read_s:g} s; is it overloaded or still loading the model?") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise BackendUnavailable(f"cannot reach the completion server at {self.endpoint} ({exc}); "
                                     "is it running? check [model] remote_url") from exc
        if resp.status != 200:
            detail = resp.read(2000).decode("utf-8", "replace").strip()
            raise ModelError(f"the completion server at {self.endpoint} refused the request "
                             f"(HTTP {resp.status}): {detail or resp.reason}")
        return resp

    def post_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One non-streamed request; the decoded JSON answer."""
        conn = self.connect()
        try:
            resp = self._open(conn, {**body, "stream": False})
            try:
                return dict(json.loads(resp.read()))
            except TimeoutError as exc:
                raise RemoteTimeout(f"the completion server at {self.endpoint} went silent for more than "
                                    f"{self.settings.read_timeout_s:g} s") from exc
            except ValueError as exc:
                raise ModelError(f"the completion server at {self.endpoint} sent invalid JSON ({exc})") from exc
        finally:
            conn.close()

    def events(self, conn: http.client.HTTPConnection, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """POST ``body`` on ``conn`` and yield each server-sent event's JSON."""
        read_s = self.settings.read_timeout_s
        resp = self._open(conn, body)
        while True:
            try:
                raw = resp.readline()
            except TimeoutError as exc:
                raise RemoteTimeout(f"the completion server at {self.endpoint} went silent for more than "
                                    f"{read_s:g} s mid-stream") from exc
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, ": keepalive" comments, "event:" lines
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                event = json.loads(payload)
            except json.JSONDecodeError:
                logger.warning("completion server sent a malformed event: %.200s", payload)
                continue
            if isinstance(event, dict) and "error" in event:
                raise ModelError(f"the completion server at {self.endpoint} failed: {event['error']}")
            yield event


class ApproxTokenizer:
    """Stand-in when no local tokenizer is given: ~4 characters per token; knows the FIM format's
    special tokens so the engine detects the format and names its stop tokens."""

    def __init__(self, special_tokens: Sequence[str] = ()) -> None:
        self._vocab = {t: i for i, t in enumerate(dict.fromkeys(special_tokens))}
        self._names = {i: t for t, i in self._vocab.items()}
        self.eos_token_id = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [-1] * ((len(text) + 3) // 4)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return "".join(self._names.get(i, "") for i in ids)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)


class RemoteBackend(Backend):
    """A text backend: the server decodes, the engine builds prompts and post-processes."""

    name = "remote"
    supports_tokens = False

    def __init__(self, settings: RemoteSettings, *, tokenizer: Any, source: Any = None) -> None:
        model_id = str(getattr(source, "model_id", "") or settings.model)
        super().__init__(tokenizer=tokenizer, model_id=model_id, source=source)
        self.settings = settings
        self.client = CompletionsClient(settings)
        self.adapter: str | None = settings.adapter

    def use_adapter(self, adapter: str | None) -> None:
        """Choose the (merged) adapter later requests use, by name/folder/index; None = base model."""
        self.adapter = adapter

    def generate_text(self, prompt: str, request: GenerationRequest) -> GenerationResult:
        """Stream one completion; stops on the server's finish, a stop rule, cancel or time budget."""
        t0 = time.perf_counter()
        req = request
        if req.cancel is not None and req.cancel.cancelled:
            return GenerationResult(text="", finish_reason="cancelled")
        stops = [s for s in req.stop if s] + self._stop_id_strings(req.stop_ids)
        lead_space = self._mlx_lm_lead_space(prompt, req)
        body = self.client.body(prompt, req, self.adapter)
        text, emitted, reason, first, usage = "", 0, "eos", 0.0, {}
        conn = self.client.connect()
        try:
            for event in self.client.events(conn, body):
                usage = event.get("usage") or usage
                choice = (event.get("choices") or [{}])[0]
                piece = choice.get("text") or ""
                if piece:
                    if not first and lead_space and not piece.startswith(" "):
                        piece = " " + piece
                    first = first or time.perf_counter()
                    text += piece
                    cut = _stop_cut(text, stops, req)
                    if cut is not None:
                        text, reason = text[:cut], "stop"
                        break
                    emitted = _emit(req, text, emitted, stops)
                if choice.get("finish_reason"):
                    # "stop" means EOS here (stop strings are applied on this side); the usage
                    # event may still follow, so the stream is read to its end.
                    reason = "length" if choice["finish_reason"] == "length" else "eos"
                    continue
                if req.cancel is not None and req.cancel.cancelled:
                    reason = "cancelled"
                    break
                if req.time_budget_s is not None and time.perf_counter() - t0 > req.time_budget_s:
                    reason = "time"
                    break
        finally:
            conn.close()  # closing the stream is how a remote generation is cancelled
        if req.on_token is not None and len(text) > emitted and reason != "cancelled":
            req.on_token(text[emitted:])
        t1 = time.perf_counter()
        first = first or t1
        details = usage.get("prompt_tokens_details") or {}
        return GenerationResult(
            text=text, finish_reason=reason,
            prompt_tokens=int(usage.get("prompt_tokens") or len(self.encode(prompt))),
            cached_tokens=int(details.get("cached_tokens") or 0),
            prefill_ms=(first - t0) * 1000, decode_ms=(t1 - first) * 1000)

    def _mlx_lm_lead_space(self, prompt: str, req: GenerationRequest) -> bool:
        """Whether mlx_lm.server will drop a leading space from this (greedy) completion.

        Its streaming BPE detokenizer trims the first token's leading space, which matters in
        code (``return`` + `` a``). The first token's id only comes back without streaming, so a
        one-token request (served from the server's prompt cache by the stream that follows)
        tells whether the completion starts with a space. Needs a local tokenizer and greedy decoding.
        """
        if (self.settings.server != "mlx_lm" or req.temperature > 0 or isinstance(self.tokenizer, ApproxTokenizer)
                or (req.cancel is not None and req.cancel.cancelled)):
            return False
        probe = self.client.body(prompt, replace(req, max_tokens=1), self.adapter, stream=False)
        answer = self.client.post_json({**probe, "logprobs": True})
        try:
            token = int(answer["choices"][0]["logprobs"]["content"][0]["id"])
        except (KeyError, IndexError, TypeError, ValueError):
            return False
        return self.decode([token]).startswith(" ")

    def _stop_id_strings(self, ids: Sequence[int]) -> list[str]:
        """Stop token ids (EOS, FIM end tokens) as text: servers may print special tokens."""
        return [s for s in (self.decode([i]) for i in ids) if s]

    # Adapters live on the server: a stack maps to one served (merged) adapter by name.
    def set_adapter_stack(self, stack: Any) -> None:
        self.adapter_stack = stack
        if stack is None:
            self.adapter = self.settings.adapter
            return
        entries = list(stack)
        if len(entries) != 1 or entries[0][1] != 1.0:
            raise ModelError(f"a remote server applies one adapter per request at weight 1; this stack is "
                             f"{stack.weights}. Merge it (`mochi adapters merge`), serve the merged adapter "
                             "and name it in the remote options")
        adapter = entries[0][0]
        if self.settings.adapter_mode == "adapters" and adapter.path is not None:
            self.adapter = str(adapter.path)  # mlx_lm.server loads the folder itself
        else:
            self.adapter = adapter.name

    def update_adapter_weights(self) -> None:
        """Weights of a served adapter are fixed on the server; serve a re-merged adapter instead."""

    def fuse(self) -> None:
        """Fusing is the server's business (vLLM/llama.cpp apply the adapter their way)."""

    def unfuse(self) -> None:
        """See :meth:`fuse`."""


def _stop_cut(text: str, stops: Sequence[str], req: GenerationRequest) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    cut = min(hits) if hits else None
    if req.stop_fn is not None and (fn_cut := req.stop_fn(text)) is not None:
        cut = fn_cut if cut is None else min(cut, fn_cut)
    return cut


def _emit(req: GenerationRequest, text: str, emitted: int, stops: Sequence[str]) -> int:
    """Stream the part of ``text`` that can no longer become a stop sequence; returns the new mark."""
    if req.on_token is None:
        return emitted
    held = max((k for s in stops for k in range(min(len(s) - 1, len(text)), 0, -1)
                if s.startswith(text[-k:])), default=0)
    safe = len(text) - held
    if safe > emitted:
        req.on_token(text[emitted:safe])
        return safe
    return emitted


def _load_tokenizer(folder: str | None, fim_format: str | None) -> Any:
    """The model's HF tokenizer from a local folder (exact counts), else :class:`ApproxTokenizer`."""
    if folder and (Path(folder) / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    from mochi_model.fim import FIM_FORMATS

    fmt = FIM_FORMATS.get(fim_format or "qwen")
    specials = (fmt.prefix, fmt.suffix, fmt.middle, *fmt.stop_tokens) if fmt is not None else ()
    return ApproxTokenizer(specials)


def _served_model_name(source: Any) -> str:
    """The ``model`` field to send by default: the configured model (a preset → its hub repo id,
    which is the name vLLM serves it under), or mlx_lm.server's ``default_model``."""
    model_id = str(getattr(source, "model_id", "") or "") if source is not None else ""
    if not model_id:
        return "default_model"
    from mochi_model.presets import get_preset

    try:
        preset = get_preset(model_id)
    except ModelNotFound:  # not a preset name: a served name or model path, sent as given
        return model_id
    return preset.repos.get("torch") or model_id


def load_backend(source: Any, *, device: str = "auto", dtype: str = "auto",
                 options: dict[str, Any] | None = None) -> RemoteBackend:
    """A :class:`RemoteBackend` from ``options`` (see :class:`RemoteSettings`).

    ``options['model']`` defaults to the configured model (``[model] path``, else the preset's hub
    id). ``options['tokenizer']`` (a local model folder) gives exact token counts; by default the
    ``source`` folder is used when it holds a tokenizer, else an approximation that knows the
    ``options['fim_format']`` tokens (default ``qwen``). ``device``/``dtype`` do not apply.
    """
    options = dict(options or {})
    settings = RemoteSettings.from_options(options, default_model=_served_model_name(source))
    folder = options.get("tokenizer")
    if folder is None and source is not None:
        local = getattr(source, "path", None) or (source if isinstance(source, (str, Path)) else None)
        has_tokenizer = local and any((Path(str(local)) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
        folder = str(local) if has_tokenizer else None
    return RemoteBackend(settings, tokenizer=_load_tokenizer(folder, options.get("fim_format")), source=source)
