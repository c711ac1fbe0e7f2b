"""The MLX token backend (mlx-lm): the default on Apple Silicon, and ``mlx[cpu]`` on Linux.

Loads a local Hugging Face folder or a hub repo id with ``mlx_lm.load`` and exposes the single
forward steps that :mod:`mochi_model.generation` drives (see :mod:`mochi_model.backends.base`):
an mlx-lm prompt cache is the KV cache, trimmed in place for prefix reuse. Adapters come from
the shared on-disk format and run as a weighted stack (:mod:`mochi_model.adapters.mlx_lora`),
so torch and MLX compute the same ``y = W·x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x``.

Every MLX call of a backend runs on one thread it owns (:class:`MlxThread`): since mlx 0.31.2
streams are thread-local, and arrays made on one thread fail on another's stream ("There is no
Stream(gpu, 0) in current thread"), while the servers call the engine from worker threads.

``mlx`` and ``mlx_lm`` are imported inside functions, and torch is never imported here.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mochi_model.backends.base import Backend
from mochi_model.errors import BackendUnavailable, ModelError, ModelNotFound

if TYPE_CHECKING:
    from mochi_model.adapters.stack import AdapterStack

logger = logging.getLogger(__name__)

_DTYPES = ("float32", "bfloat16", "float16")


def _import_mlx() -> tuple[Any, Any]:
    try:
        import mlx.core as mx
        import mlx_lm
    except ImportError as exc:
        raise BackendUnavailable.missing_extra("mlx", "mlx", exc) from exc
    return mx, mlx_lm


def _source_location(source: Any) -> tuple[str, str | None]:
    """``(local folder or hub repo id, revision)`` from a ResolvedModel, a path or a string."""
    if isinstance(source, (str, Path)):
        return str(source), None
    for attr in ("path", "local_path", "folder"):
        value = getattr(source, attr, None)
        if value:
            return str(value), getattr(source, "revision", None)
    for attr in ("repo_id", "model_id", "id"):
        value = getattr(source, attr, None)
        if value:
            return str(value), getattr(source, "revision", None)
    raise ModelNotFound(f"cannot tell where to load the model from ({source!r})")


def _config_overrides(folder: Path) -> dict[str, Any]:
    """Keys mlx-lm reads that transformers ≥ 5 writes elsewhere.

    transformers 5 stores ``rope_theta`` inside ``rope_parameters``; mlx-lm's Qwen2 reads the
    top-level key and otherwise assumes 1e6, which silently changes the model's outputs.
    """
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        return {}
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    rope = cfg.get("rope_parameters")
    if "rope_theta" not in cfg and isinstance(rope, dict) and "rope_theta" in rope:
        return {"rope_theta": float(rope["rope_theta"])}
    return {}


T = TypeVar("T")


class MlxThread:
    """The one thread a backend's MLX work runs on (the model is loaded there too).

    A daemon thread fed by a queue, not a ``ThreadPoolExecutor``: the executor's worker is joined
    at interpreter exit, and mlx 0.32 aborts the process ("terminate called without an active
    exception") when a thread that created MLX streams ends before MLX's own teardown. A daemon
    thread simply stops with the process.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="mochi-mlx", daemon=True)
        self._thread.start()
        self.ident = self._thread.ident

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                fut.set_exception(exc)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` on the MLX thread and wait for it (directly when already there)."""
        if threading.get_ident() == self.ident:
            return fn(*args, **kwargs)
        if self._closed:
            raise ModelError("the MLX backend was closed")
        fut: Future[T] = Future()
        self._jobs.put((functools.partial(fn, *args, **kwargs), fut))
        return fut.result()

    def shutdown(self) -> None:
        """Let the thread finish what was queued, then end; later calls raise ModelError."""
        self._closed = True
        self._jobs.put(None)


def _on_mlx_thread(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: MlxBackend, *args: Any, **kwargs: Any) -> T:
        return self.mlx_thread.run(method, self, *args, **kwargs)

    return wrapper


class MlxBackend(Backend):
    """A causal LM loaded with mlx-lm, stepped one forward pass at a time."""

    name = "mlx"
    supports_tokens = True

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str, config: dict[str, Any],
                 source: Any = None, mlx_thread: MlxThread | None = None) -> None:
        super().__init__(tokenizer=tokenizer, model_id=model_id, source=source)
        self.mlx_thread = mlx_thread or MlxThread()
        self.model = model
        self.config = config
        self._adapter_names: list[str] = []

    # --- KV cache ---------------------------------------------------------------------------
    @_on_mlx_thread
    def new_cache(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache

        return make_prompt_cache(self.model)

    def cache_len(self, cache: list[Any]) -> int:
        return int(cache[0].offset) if cache else 0

    @_on_mlx_thread
    def trim_cache(self, cache: list[Any], n: int) -> None:
        """Keep only the first ``n`` cached tokens (what a typing user's next request shares)."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        drop = self.cache_len(cache) - max(0, n)
        if drop <= 0:
            return
        if not can_trim_prompt_cache(cache):
            raise ModelError(f"{self.model_id}: this model's KV cache cannot be trimmed; prefix reuse is off")
        trim_prompt_cache(cache, drop)

    # --- forward passes -------------------------------------------------------------------
    def _forward(self, ids: Sequence[int], cache: list[Any] | None) -> Any:
        import mlx.core as mx

        return self.model(mx.array([list(ids)], dtype=mx.int32), cache=cache)

    @_on_mlx_thread
    def prefill(self, ids: Sequence[int], cache: list[Any]) -> np.ndarray:
        """Feed ``ids`` after what ``cache`` holds; logits of the last one as float32 numpy."""
        import mlx.core as mx

        if not ids:
            raise ModelError("prefill needs at least one token")
        # One pass: the decoding loop (generation.Generator) already feeds long prompts in chunks.
        logits = self._forward(list(ids), cache)[0, -1]
        return np.array(logits.astype(mx.float32))

    @_on_mlx_thread
    def step(self, token: int, cache: list[Any]) -> np.ndarray:
        import mlx.core as mx

        logits = self._forward([int(token)], cache)[0, -1]
        return np.array(logits.astype(mx.float32))

    @_on_mlx_thread
    def forward_many(self, ids: Sequence[int], cache: list[Any]) -> np.ndarray:
        import mlx.core as mx

        logits = self._forward([int(t) for t in ids], cache)[0]
        return np.array(logits.astype(mx.float32))

    @_on_mlx_thread
    def logits_for(self, ids: Sequence[int]) -> np.ndarray:
        """``(len(ids), vocab)`` float32 logits from an empty cache (parity tests)."""
        import mlx.core as mx

        logits = self._forward(ids, self.new_cache())[0]
        return np.array(logits.astype(mx.float32))

    # --- adapters -----------------------------------------------------------------------------
    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """``{module path: (in, out)}`` of every linear layer (adapter compatibility checks)."""
        import mlx.nn as nn

        from mochi_model.adapters.mlx_lora import StackedLoRALinear, linear_dims

        shapes = {}
        for path, mod in self.model.named_modules():
            if isinstance(mod, StackedLoRALinear):
                shapes[path] = (mod.in_dims, mod.out_dims)
            elif isinstance(mod, (nn.Linear, nn.QuantizedLinear)):
                shapes[path] = linear_dims(mod)
        return shapes

    @_on_mlx_thread
    def set_adapter_stack(self, stack: AdapterStack | None) -> None:
        """Install ``stack`` (replacing any previous one); ``None`` returns to the base model.

        Raises:
            AdapterMismatch: an adapter was trained for another base model (nothing is changed).
        """
        from mochi_model.adapters import mlx_lora
        from mochi_model.adapters.format import BaseModelRef

        if stack is not None:
            stack.check(BaseModelRef.from_hf_config(self.model_id, self.config), self.module_shapes())
        for name in self._adapter_names:
            mlx_lora.detach_adapter(self.model, name)
        self._adapter_names = []
        self.adapter_stack = None
        self.fused = False
        if stack is None:
            return
        dtype = self._float_dtype()
        for adapter, weight in stack:
            mlx_lora.attach_adapter(self.model, adapter.name, mlx_lora.mx_pairs(adapter.data, dtype), weight)
            self._adapter_names.append(adapter.name)
        self.adapter_stack = stack
        if stack.fused:
            self.fuse()

    def _float_dtype(self) -> Any:
        """The dtype of the model's floating weights (adapters are computed in it, like torch)."""
        import mlx.core as mx

        emb = self.model.model.embed_tokens if hasattr(self.model, "model") else None
        dtype = getattr(getattr(emb, "scales", None), "dtype", None) or getattr(getattr(emb, "weight", None), "dtype", None)
        return dtype if dtype in (mx.float32, mx.bfloat16, mx.float16) else mx.float32

    @_on_mlx_thread
    def update_adapter_weights(self) -> None:
        """Apply the stack's current weights (per request, no reload); re-fuses when fused."""
        from mochi_model.adapters import mlx_lora

        if self.adapter_stack is None:
            return
        mlx_lora.set_stack_weights(self.model, self.adapter_stack.weights)
        if self.fused or self.adapter_stack.fused:
            self.fuse()

    @_on_mlx_thread
    def fuse(self) -> None:
        from mochi_model.adapters import mlx_lora

        mlx_lora.fuse_model(self.model)
        self.fused = self.adapter_stack is not None

    @_on_mlx_thread
    def unfuse(self) -> None:
        from mochi_model.adapters import mlx_lora

        mlx_lora.unfuse_model(self.model)
        self.fused = False

    def close(self) -> None:
        """Drop the model, return MLX's buffer cache, and stop the MLX thread."""

        def release() -> None:
            import mlx.core as mx

            self.model = None
            mx.clear_cache()

        self.mlx_thread.run(release)
        self.mlx_thread.shutdown()


def load_backend(source: Any, *, device: str = "auto", dtype: str = "auto",
                 options: dict[str, Any] | None = None) -> MlxBackend:
    """Load ``source`` (a ResolvedModel, local HF folder or hub repo id) with mlx-lm.

    Args:
        source: where the weights are; a GGUF ResolvedModel is loaded from its converted HF folder.
        device: ``cpu`` forces MLX's CPU device; anything else keeps MLX's default (the GPU on a Mac).
        dtype: ``auto`` keeps the stored dtype; ``float32``/``bfloat16``/``float16`` cast floating weights.
        options: unused for now (kept for the common ``load_backend`` signature).

    Raises:
        BackendUnavailable: mlx / mlx-lm are not installed.
        ModelNotFound: the folder or repo cannot be found.
    """
    mx, mlx_lm = _import_mlx()
    if getattr(source, "is_gguf", False):
        # mlx-lm reads safetensors folders: use the HF folder the GGUF is converted to once (the
        # conversion itself runs on transformers + torch; a folder converted earlier needs neither).
        from mochi_model.sources import convert_gguf

        source = convert_gguf(source)
    where, revision = _source_location(source)
    if where.endswith(".gguf"):
        raise ModelError(f"the MLX backend cannot load GGUF files ({where}); use --backend torch, "
                         "or an MLX/safetensors model folder or hub repo")
    if dtype != "auto" and dtype not in _DTYPES:
        raise ModelError(f"dtype must be auto or one of {', '.join(_DTYPES)}, got {dtype!r}")
    folder = Path(where)
    overrides = _config_overrides(folder) if folder.is_dir() else {}

    def load() -> tuple[Any, Any, dict[str, Any]]:
        if device == "cpu":
            mx.set_default_device(mx.cpu)
        try:
            model, wrapper, config = mlx_lm.load(where, model_config=overrides, revision=revision,
                                                 return_config=True)
        except FileNotFoundError as exc:
            raise ModelNotFound(f"cannot load {where!r} with mlx-lm ({exc}); give a local HF folder or hub repo id") from exc
        if dtype != "auto":
            model.set_dtype(getattr(mx, dtype))
            mx.eval(model.parameters())
        return model, wrapper, config

    mlx_thread = MlxThread()
    try:
        model, wrapper, config = mlx_thread.run(load)
    except BaseException:
        mlx_thread.shutdown()
        raise
    model_id = str(getattr(source, "model_id", "") or where)
    # The HF tokenizer under mlx-lm's wrapper: identical encode/decode to the torch backend.
    tokenizer = getattr(wrapper, "_tokenizer", wrapper)
    logger.info("loaded %s with mlx-lm (%s)", model_id, dtype)
    return MlxBackend(model, tokenizer, model_id=model_id, config=dict(config), source=source, mlx_thread=mlx_thread)
