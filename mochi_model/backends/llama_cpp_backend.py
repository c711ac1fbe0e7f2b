"""The llama.cpp backend: quantized GGUF weights on the CPU, driven one forward pass at a time.

It loads a ``.gguf`` file as it is (memory-mapped, no de-quantizing: the Q4_K_M 0.5B model is ready
in about a second) through llama-cpp-python's low-level C API (``llama_cpp.llama_*``), not its
high-level ``Llama`` class: :class:`mochi_model.generation.Generator` is the decoding loop here as on
torch and MLX, so KV prefix reuse, chunked prefill, prompt-lookup drafts, stop rules, cancellation
and the time budget behave the same on every backend.

- **KV cache.** One llama.cpp context holds a unified KV store with a few sequence ids. A cache
  object from :meth:`new_cache` owns one sequence id (given back when the object is dropped);
  :meth:`trim_cache` is ``llama_memory_seq_rm(seq, n, -1)``. :meth:`logits_for` runs on its own
  short-lived sequence, so it never disturbs the decoding loop's cache.
- **Logits.** Prefill and single steps ask llama.cpp for the last position's logits only;
  :meth:`forward_many` (draft verification) marks every position as an output.
- **Adapter stack.** Each Mochi adapter is written once as a GGUF LoRA
  (:mod:`mochi_model.adapters.gguf_lora`) and loaded with ``llama_adapter_lora_init``;
  ``llama_set_adapters_lora`` installs the whole stack with one scale per adapter, so
  ``y = Q(W)x + Σ wᵢ sᵢ Bᵢ Aᵢ x`` and new weights take effect without a reload. llama.cpp cannot
  fold a delta into quantized weights: ``fuse()`` only records the request (the low-rank
  matmuls stay; they are cheap next to the base weights).
- **Tokenizer.** llama.cpp's own vocabulary from the GGUF (:class:`LlamaTokenizer`: ``encode``,
  ``decode``, ``get_vocab``, ``eos_token_id``, the chat template), so no torch/transformers import.

Options (``load_backend(options=...)``; environment in brackets): ``threads`` [MOCHI_THREADS]
(default ``auto``: all cores, fewer while other processes keep cores busy — :class:`ThreadGovernor`), ``n_ctx`` [MOCHI_N_CTX] (default 8192 tokens; longer prompts raise
:class:`ModelError`), ``n_batch`` (256), ``kv_type`` (``f16`` as llama.cpp stores it, or ``f32``),
``flash_attn`` [MOCHI_FLASH_ATTN] (``auto``/``on``/``off``; flash attention rounds through f16, so
the exact-parity tests turn it off).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mochi_model.adapters.format import BaseModelRef
from mochi_model.adapters.stack import AdapterStack
from mochi_model.backends.base import Backend
from mochi_model.errors import BackendUnavailable, ModelError, ModelNotFound
from mochi_model.sources import ResolvedModel

logger = logging.getLogger(__name__)
_lib: Any = None
_init_lock = threading.Lock()
_log_cb: Any = None  # keep the ctypes callback alive
# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. llama.cpp warns about model-file
# quirks on every load (e.g. Qwen's "</s>" token type): those stay at INFO; errors become warnings.
_GGML_LEVELS = {3: logging.INFO, 4: logging.WARNING}
N_SEQ = 4
# Rows of logits llama.cpp reserves (n_outputs_max): 64 × 152k vocab × 4 B = 39 MB instead of the
# n_batch (512) rows = 311 MB it reserves by default; drafts need at most 1 + 4·lookahead rows.
N_OUTPUTS = 64
_FLASH = {"auto": -1, "off": 0, "on": 1}  # llama_flash_attn_type


def _llama() -> Any:
    """Import llama_cpp once, route its log output into Python logging (stderr stays clean)."""
    global _lib, _log_cb
    with _init_lock:
        if _lib is not None:
            return _lib
        try:
            import llama_cpp
        except (ImportError, OSError) as exc:
            raise BackendUnavailable("the llama backend needs llama-cpp-python: run `bash scripts/build_llama_cpp.sh` "
                                     f"(or pip install 'mochi-code[llama]') — {exc}") from exc
        cpp_log = logging.getLogger("mochi_model.llama_cpp")

        @llama_cpp.llama_log_callback
        def _log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
            py_level = _GGML_LEVELS.get(int(level), logging.DEBUG)
            if cpp_log.isEnabledFor(py_level):
                cpp_log.log(py_level, "%s", text.decode("utf-8", "replace").rstrip())

        _log_cb = _log
        llama_cpp.llama_log_set(_log_cb, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _lib = llama_cpp
        return _lib


def _meta(lib: Any, model: Any, key: str) -> str | None:
    buf = ctypes.create_string_buffer(1 << 16)
    n = lib.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    if n < 0:
        return None
    if n >= len(buf):  # long values (chat templates)
        buf = ctypes.create_string_buffer(n + 1)
        lib.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    return buf.value.decode("utf-8", "replace")


class LlamaTokenizer:
    """The GGUF's vocabulary through llama.cpp, with the part of the HF tokenizer API Mochi uses."""

    def __init__(self, lib: Any, model: Any, chat_template: str | None) -> None:
        self._lib = lib
        self._vocab = lib.llama_model_get_vocab(model)
        self.vocab_size = int(lib.llama_vocab_n_tokens(self._vocab))
        eos = int(lib.llama_vocab_eos(self._vocab))
        self.eos_token_id = eos if eos >= 0 else None
        eot = int(lib.llama_vocab_eot(self._vocab))
        self.eot_token_id = eot if eot >= 0 else None
        self.chat_template = chat_template
        self._vocab_dict: dict[str, int] | None = None
        self._pieces: dict[int, bytes] = {}
        self._buf = (lib.llama_token * 4096)()

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        raw = text.encode("utf-8")
        n = self._lib.llama_tokenize(self._vocab, raw, len(raw), self._buf, len(self._buf), add_special_tokens, True)
        if n < 0:
            self._buf = (self._lib.llama_token * (-n + 16))()
            n = self._lib.llama_tokenize(self._vocab, raw, len(raw), self._buf, len(self._buf), add_special_tokens, True)
        return list(self._buf[:n])

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return b"".join(self._piece(int(t)) for t in ids).decode("utf-8", "replace")

    def get_vocab(self) -> dict[str, int]:
        """Token text → id (byte-level BPE spelling, as HF's ``get_vocab``); built once (~0.1 s)."""
        if self._vocab_dict is None:
            get = self._lib.llama_vocab_get_text
            out: dict[str, int] = {}
            for i in range(self.vocab_size):
                text = get(self._vocab, i)
                if text is not None:
                    out.setdefault(text.decode("utf-8", "replace"), i)
            self._vocab_dict = out
        return self._vocab_dict

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.get_vocab().get(token)

    def __len__(self) -> int:
        return self.vocab_size

    def apply_chat_template(self, messages: list[dict[str, str]], *, tokenize: bool = False,
                            add_generation_prompt: bool = True, **_: Any) -> str:
        if not self.chat_template:
            raise ModelError("this GGUF has no chat template")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(self.chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                           eos_token="", bos_token="")
        return self.encode(text) if tokenize else text  # type: ignore[return-value]


class ThreadGovernor:
    """How many threads a forward pass should use now, from what *other* processes take of the CPU.

    llama.cpp's threads meet at a barrier after every graph node; when another job keeps a core busy,
    one of our threads is descheduled and the other spins at the barrier. Measured here (2 cores,
    load average ~7): decode 0.8 tok/s with 2 threads vs 7.7–9 tok/s with 1. So between requests
    (at most every ``interval`` s) we read ``/proc/stat`` and our own CPU time, and use
    ``cores - round(others' busy cores)`` threads (at least 1). Linux only; elsewhere the configured
    count stays.
    """

    def __init__(self, max_threads: int, interval: float = 0.5) -> None:
        self.max_threads = max_threads
        self.interval = interval
        self.threads = max_threads
        self._last: tuple[float, float, float] | None = None
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", "rb") as f:
                cpu = f.readline().split()[1:]
            busy = sum(int(x) for x in cpu) - int(cpu[3]) - (int(cpu[4]) if len(cpu) > 4 else 0)
            ours = os.times()
            return time.monotonic(), busy / self._tick, ours.user + ours.system
        except (OSError, ValueError, IndexError):
            return None

    def update(self) -> int:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.interval:
            return self.threads
        cur = self._sample()
        if cur is None:
            return self.threads
        if self._last is not None:
            dt = cur[0] - self._last[0]
            others = max(0.0, ((cur[1] - self._last[1]) - (cur[2] - self._last[2])) / dt)
            self.threads = max(1, min(self.max_threads, int(self.max_threads - others + 0.5)))
        self._last = cur
        return self.threads


class LlamaCache:
    """One KV sequence in the backend's context (what ``new_cache`` hands out)."""

    def __init__(self, backend: LlamaCppBackend, seq: int) -> None:
        self.seq = seq
        self.n = 0
        self.generation = backend._generation
        self._release = weakref.finalize(self, backend._release_seq, seq)

    def release(self) -> None:
        self._release()


class LlamaCppBackend(Backend):
    name = "llama"

    def __init__(self, lib: Any, model: Any, ctx: Any, *, model_id: str, source: ResolvedModel | None,
                 n_batch: int, n_ctx: int, threads: int) -> None:
        arch = _meta(lib, model, "general.architecture") or "llama"
        super().__init__(tokenizer=LlamaTokenizer(lib, model, _meta(lib, model, "tokenizer.chat_template")),
                         model_id=model_id, source=source)
        self._lib, self._model, self._ctx = lib, model, ctx
        self._mem = lib.llama_get_memory(ctx)
        self.arch = arch
        self.n_ctx, self.n_batch, self.threads = n_ctx, n_batch, threads
        self.n_vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model)))
        hp = {k: _meta(lib, model, f"{arch}.{k}") for k in (
            "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
            "attention.head_count_kv", "attention.key_length", "attention.value_length")}
        self.hidden = int(hp["embedding_length"] or 0)
        self.n_layers = int(hp["block_count"] or 0)
        self.ffn = int(hp["feed_forward_length"] or 0)
        n_head = int(hp["attention.head_count"] or 1)
        n_kv = int(hp["attention.head_count_kv"] or n_head)
        self.head_dim = int(hp["attention.key_length"] or (self.hidden // n_head))
        self.v_dim = int(hp["attention.value_length"] or self.head_dim)
        self.n_head, self.n_kv = n_head, n_kv
        self.base_ref = BaseModelRef(id=model_id, revision=source.revision if source else None, arch={
            "model_type": arch, "hidden_size": self.hidden, "num_hidden_layers": self.n_layers,
            "vocab_size": self.n_vocab})
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self._free_seqs = list(range(N_SEQ))
        self._generation = 0  # bumped when the adapter set changes: older caches are invalid
        self._loras: dict[str, Any] = {}  # GGUF LoRA path -> llama_adapter_lora handle
        self._stack_handles: list[tuple[str, Any]] = []  # (adapter name, handle) in stack order
        self._closed = False
        self.governor: ThreadGovernor | None = None  # set by load_backend for threads = auto

    # --- properties the engine reads -------------------------------------------------------
    @property
    def eos_ids(self) -> set[int]:
        tok = self.tokenizer
        return {i for i in (tok.eos_token_id, tok.eot_token_id) if i is not None}

    def token_id(self, token: str) -> int | None:
        if token not in self._token_ids:
            ids = self.tokenizer.encode(token)
            self._token_ids[token] = ids[0] if len(ids) == 1 and self.tokenizer.decode(ids) == token else None
        return self._token_ids[token]

    # --- KV sequences ------------------------------------------------------------------------
    def _release_seq(self, seq: int) -> None:
        if self._closed:
            return
        self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)
        if seq not in self._free_seqs:
            self._free_seqs.append(seq)

    def new_cache(self) -> LlamaCache:
        self._check_open()
        if not self._free_seqs:
            raise ModelError(f"llama backend: more than {N_SEQ} KV caches in use at once")
        seq = self._free_seqs.pop(0)
        self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)
        return LlamaCache(self, seq)

    def cache_len(self, cache: LlamaCache) -> int:
        return cache.n

    def trim_cache(self, cache: LlamaCache, n: int) -> None:
        if n < cache.n:
            if not self._lib.llama_memory_seq_rm(self._mem, cache.seq, max(0, n), -1):
                raise ModelError("llama.cpp could not trim the KV cache")
            cache.n = max(0, n)

    # --- forward passes ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("the llama backend is closed")

    def _decode(self, ids: Sequence[int], cache: LlamaCache, all_logits: bool) -> np.ndarray:
        """Feed ``ids`` after ``cache``; logits of every position (``all_logits``) or of the last one."""
        self._check_open()
        if cache.generation != self._generation:
            raise ModelError("this KV cache belongs to another adapter set; start a new one")
        if not ids:
            raise ValueError("no tokens to feed")
        if cache.n + len(ids) > self.n_ctx:
            raise ModelError(f"prompt of {cache.n + len(ids)} tokens exceeds the llama context of {self.n_ctx} "
                             "(set MOCHI_N_CTX or lower [completion] budgets)")
        lib, b = self._lib, self._batch
        rows: list[np.ndarray] = []
        # llama.cpp keeps room for N_OUTPUTS rows of logits; a longer all-logits pass goes in parts
        step = min(self.n_batch, N_OUTPUTS) if all_logits else self.n_batch
        for start in range(0, len(ids), step):
            part = ids[start: start + step]
            last = start + len(part) == len(ids)
            n = len(part)
            b.n_tokens = n
            for i, tok in enumerate(part):
                b.token[i] = int(tok)
                b.pos[i] = cache.n + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = cache.seq
                b.logits[i] = 1 if (all_logits or (last and i == n - 1)) else 0
            rc = lib.llama_decode(self._ctx, b)
            if rc != 0:
                # A failed decode may leave part of the batch in the cache: drop what we cannot account for.
                lib.llama_memory_seq_rm(self._mem, cache.seq, cache.n, -1)
                raise ModelError(f"llama_decode failed (code {rc}) after {cache.n} cached tokens")
            cache.n += n
            if all_logits:
                ptr = lib.llama_get_logits(self._ctx)
                rows.append(np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab)).copy())
            elif last:
                ptr = lib.llama_get_logits_ith(self._ctx, n - 1)
                rows.append(np.ctypeslib.as_array(ptr, shape=(1, self.n_vocab)).copy())
        return np.concatenate(rows, axis=0) if len(rows) > 1 else rows[0]

    def _retune(self) -> None:
        gov = self.governor
        if gov is not None:
            before = gov.threads
            n = gov.update()
            if n != before:
                self._lib.llama_set_n_threads(self._ctx, n, n)
                logger.debug("llama backend: %d thread(s) (other load on the CPU)", n)
            self.threads = n

    def prefill(self, ids: Sequence[int], cache: LlamaCache) -> np.ndarray:
        self._retune()
        return self._decode(ids, cache, False)[-1]

    def step(self, token: int, cache: LlamaCache) -> np.ndarray:
        self._retune()
        return self._decode([token], cache, False)[-1]

    def forward_many(self, ids: Sequence[int], cache: LlamaCache) -> np.ndarray:
        return self._decode(ids, cache, True)

    def logits_for(self, ids: Sequence[int]) -> np.ndarray:
        cache = self.new_cache()
        try:
            return self._decode(ids, cache, True)
        finally:
            cache.release()

    # --- adapters ----------------------------------------------------------------------------
    def module_shapes(self) -> dict[str, tuple[int, int]]:
        h, q, kv, f = self.hidden, self.n_head * self.head_dim, self.n_kv * self.head_dim, self.ffn
        v = self.n_kv * self.v_dim
        per = {"self_attn.q_proj": (h, q), "self_attn.k_proj": (h, kv), "self_attn.v_proj": (h, v),
               "self_attn.o_proj": (self.n_head * self.v_dim, h), "mlp.gate_proj": (h, f), "mlp.up_proj": (h, f),
               "mlp.down_proj": (f, h)}
        return {f"model.layers.{i}.{k}": s for i in range(self.n_layers) for k, s in per.items()}

    def _lora_handle(self, adapter: Any) -> Any:
        from mochi_model.adapters.gguf_lora import gguf_lora_for

        path = str(gguf_lora_for(adapter.data, arch=self.arch, n_layers=self.n_layers))
        handle = self._loras.get(path)
        if handle is None:
            handle = self._lib.llama_adapter_lora_init(self._model, path.encode())
            if not handle:
                raise ModelError(f"llama.cpp could not load the adapter {adapter.name!r} ({path}); "
                                 "see the log for the tensor it refused")
            self._loras[path] = handle
        return handle

    def _apply_scales(self) -> None:
        stack = self.adapter_stack
        weights = stack.weights if stack is not None else {}
        # Adapters at weight 0 are left out: no work for them.
        active = [(name, h) for name, h in self._stack_handles if weights.get(name, 0.0) != 0.0]
        arr = (self._lib.llama_adapter_lora_p_ctypes * max(1, len(active)))(*[h for _, h in active])
        scales = (ctypes.c_float * max(1, len(active)))(*[weights[name] for name, _ in active])
        rc = self._lib.llama_set_adapters_lora(self._ctx, arr if active else None, len(active),
                                               scales if active else None)
        if rc != 0:
            raise ModelError(f"llama.cpp refused the adapter stack (code {rc})")

    def prepare_adapter_stack(self, stack: AdapterStack) -> None:
        """Check the stack and write each adapter's GGUF LoRA (cached), without touching the context."""
        from mochi_model.adapters.gguf_lora import gguf_lora_for

        self._check_open()
        stack.check(self.base_ref, self.module_shapes())
        for adapter, _ in stack:
            gguf_lora_for(adapter.data, arch=self.arch, n_layers=self.n_layers)

    def set_adapter_stack(self, stack: AdapterStack | None) -> None:
        self._check_open()
        if stack is not None:
            stack.check(self.base_ref, self.module_shapes())
            handles = [(adapter.name, self._lora_handle(adapter)) for adapter, _ in stack]
        else:
            handles = []
        self.adapter_stack, self._stack_handles = stack, handles
        self.fused = bool(stack is not None and stack.fused)
        self._generation += 1
        self._apply_scales()
        self._free_unused_loras()

    def _free_unused_loras(self) -> None:
        """Free the LoRAs no longer in the stack (the context no longer lists them): a server whose
        adapter is updated in place would otherwise keep every old version in memory."""
        used = {id(h) for _, h in self._stack_handles}
        for path, handle in list(self._loras.items()):
            if id(handle) not in used:
                self._lib.llama_adapter_lora_free(handle)
                del self._loras[path]

    def update_adapter_weights(self) -> None:
        if self.adapter_stack is not None:
            self._apply_scales()

    def fuse(self) -> None:
        # Quantized weights cannot absorb a float delta; the stack keeps running as low-rank matmuls.
        self.fused = True

    def unfuse(self) -> None:
        self.fused = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        lib = self._lib
        lib.llama_batch_free(self._batch)
        lib.llama_free(self._ctx)
        for handle in self._loras.values():
            lib.llama_adapter_lora_free(handle)
        self._loras.clear()
        lib.llama_model_free(self._model)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass


def _int_option(options: dict[str, Any], key: str, env: str, default: int) -> int:
    raw = options.get(key) or os.environ.get(env) or default
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        raise ModelError(f"{key} must be a whole number, got {raw!r}") from None


def load_backend(source: ResolvedModel, *, device: str = "auto", dtype: str = "auto",
                 options: dict[str, Any] | None = None) -> LlamaCppBackend:
    """Load a ``.gguf`` model with llama.cpp (CPU, weights as stored in the file)."""
    options = options or {}
    if not source.is_gguf:
        raise ModelNotFound(f"the llama backend loads .gguf files; {source.path} is not one "
                            "(use backend = torch for an HF folder, or point [model] path at a .gguf)")
    if not Path(source.path).is_file():
        raise ModelNotFound(f"GGUF file {source.path} does not exist")
    if device not in ("auto", "cpu", "", None):
        logger.warning("llama backend runs on the CPU; ignoring device=%s", device)
    lib = _llama()
    raw_threads = str(options.get("threads") or os.environ.get("MOCHI_THREADS") or "auto").lower()
    cores = os.cpu_count() or 2
    auto_threads = raw_threads == "auto"
    threads = cores if auto_threads else _int_option(options, "threads", "MOCHI_THREADS", cores)
    n_ctx = _int_option(options, "n_ctx", "MOCHI_N_CTX", 8192)
    n_batch = _int_option(options, "n_batch", "MOCHI_N_BATCH", 256)  # = the Generator's prefill chunk
    t0 = time.perf_counter()
    mparams = lib.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = lib.llama_model_load_from_file(str(source.path).encode(), mparams)
    if not model:
        raise ModelNotFound(f"llama.cpp could not load {source.path} (not a GGUF model it knows?)")
    cparams = lib.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = n_batch
    cparams.n_ubatch = n_batch
    cparams.n_outputs_max = N_OUTPUTS
    cparams.n_seq_max = N_SEQ
    cparams.kv_unified = True  # all sequences share n_ctx cells (one is used at a time)
    cparams.n_threads = threads
    cparams.n_threads_batch = threads
    cparams.no_perf = True
    if str(options.get("kv_type", "f16")) == "f32":  # exact parity tests; f16 halves the KV memory
        cparams.type_k = cparams.type_v = 0  # GGML_TYPE_F32
    fa = str(options.get("flash_attn") or os.environ.get("MOCHI_FLASH_ATTN") or "auto").lower()
    if fa not in _FLASH:
        raise ModelError(f"flash_attn must be one of {', '.join(_FLASH)}, got {fa!r}")
    cparams.flash_attn_type = _FLASH[fa]
    ctx = lib.llama_init_from_model(model, cparams)
    if not ctx:
        lib.llama_model_free(model)
        raise ModelError(f"llama.cpp could not create a context for {source.path} (n_ctx={n_ctx}; out of memory?)")
    be = LlamaCppBackend(lib, model, ctx, model_id=source.model_id, source=source, n_batch=n_batch, n_ctx=n_ctx,
                         threads=threads)
    if auto_threads and cores > 1 and os.path.exists("/proc/stat"):
        be.governor = ThreadGovernor(cores)
        be.governor.update()  # the baseline sample: the first request measures from here
    logger.info("llama backend: %s (%s, %d threads, context %d) loaded in %.2f s", source.describe(), be.arch,
                threads, n_ctx, time.perf_counter() - t0)
    return be
