"""The backend interface that the backend-agnostic decoding loop (``generation.py``) drives.

A *token backend* (torch, mlx) holds a model and its tokenizer and exposes single forward steps
over an opaque KV cache. Everything about decoding — sampling, stop tokens/sequences, cancellation
between tokens, token/time budgets, KV prefix reuse across requests — lives once in
:mod:`mochi_model.generation`, so torch and MLX behave identically.

Contract of a token backend (``supports_tokens = True``)::

    cache = backend.new_cache()
    logits = backend.prefill(ids, cache)      # feeds ids after what the cache holds; logits of the last one
    logits = backend.step(token, cache)       # feeds one token
    backend.cache_len(cache)                  # tokens held
    backend.trim_cache(cache, n)              # keep only the first n tokens (KV prefix reuse)
    backend.logits_for(ids)                   # (len(ids), vocab) float32 logits from an empty cache (tests, parity)

Logits cross the boundary as float32 numpy arrays (one row of ``vocab`` floats per step: cheap next to a
forward pass, and it keeps sampling identical on both backends).

Adapters: ``set_adapter_stack(stack)`` installs an :class:`mochi_model.adapters.stack.AdapterStack`
(``None`` removes it; ``prepare_adapter_stack(stack)`` may do its slow part first, outside the lock), ``update_adapter_weights()`` re-reads the stack's weights (no reload),
``fuse()`` folds the weighted deltas into the base weights, ``unfuse()`` restores them exactly.
``state_key()`` changes whenever the function the model computes changes (weights, fusing): the
decoding loop drops its KV cache when it does.

A *text backend* (``supports_tokens = False``, e.g. ``remote``) instead implements
``generate_text(prompt, request) -> GenerationResult`` and does its own decoding server-side; the
engine still applies post-processing and stop rules to what comes back.

Each backend module exports ``load_backend(source, *, device="auto", dtype="auto", options=None)``
returning a :class:`Backend`; :func:`mochi_model.backends.load_backend` picks the module by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mochi_model.types import CancelToken, OnToken

if TYPE_CHECKING:
    from mochi_model.adapters.stack import AdapterStack
    from mochi_model.sources import ResolvedModel

# A stop predicate gets the text generated so far and returns where to cut it (or None to go on).
StopFn = Callable[[str], "int | None"]


@dataclass(kw_only=True)
class GenerationRequest:
    """What one decoding run needs besides the prompt.

    Attributes:
        max_tokens: most new tokens.
        stop: stop sequences; the text is cut before the earliest one.
        stop_ids: extra token ids that end generation (EOS and FIM end tokens are added by the engine).
        stop_fn: predicate over the text so far (e.g. "the block ended"); returns a cut position.
        temperature: 0 = greedy (the default on the completion path).
        top_p: nucleus sampling when ``temperature > 0``.
        seed: RNG seed for sampling (reproducible runs).
        cancel: checked between tokens; a cancelled run returns ``finish_reason="cancelled"``.
        time_budget_s: wall-clock budget for the run (prefill included); ``finish_reason="time"``.
        on_token: receives text deltas as they become final (never a partial stop sequence).
        reuse_cache: allow KV prefix reuse with the previous request.
        min_tokens: the stop ids cannot end the run before this many tokens (their logits are masked;
            Hugging Face's ``min_new_tokens``, Whisper's suppression of end-of-text at the first step).
    """

    max_tokens: int = 64
    stop: Sequence[str] = ()
    stop_ids: Sequence[int] = ()
    stop_fn: StopFn | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    cancel: CancelToken | None = None
    time_budget_s: float | None = None
    on_token: OnToken | None = None
    reuse_cache: bool = True
    min_tokens: int = 0


@dataclass(kw_only=True)
class GenerationResult:
    """What a decoding run produced (before completion post-processing)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "eos"  # eos | stop | length | time | cancelled
    prompt_tokens: int = 0
    cached_tokens: int = 0
    mean_logprob: float | None = None
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    drafted_tokens: int = 0  # prompt-lookup draft tokens checked ...
    accepted_tokens: int = 0  # ... and kept (each one a decoding pass saved)


class Backend:
    """Base class of model backends. Subclasses override the token methods (or ``generate_text``)."""

    name: str = "base"
    supports_tokens: bool = True

    def __init__(self, *, tokenizer: Any, model_id: str, source: ResolvedModel | None = None) -> None:
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.source = source
        self.adapter_stack: AdapterStack | None = None
        self.fused = False
        self._token_ids: dict[str, int | None] = {}

    # --- text <-> tokens (HF tokenizers on every backend) -------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings (``<|fim_prefix|>``) become their ids."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def token_id(self, token: str) -> int | None:
        """Id of a single special token, or None when the vocabulary lacks it (memoised: building the
        vocabulary dict costs ~75 ms for a 150k-token tokenizer, and every request asks for its stop tokens)."""
        if token not in self._token_ids:
            self._token_ids[token] = self.tokenizer.get_vocab().get(token)
        return self._token_ids[token]

    @property
    def eos_ids(self) -> set[int]:
        ids: set[int] = set()
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        return ids

    def state_key(self) -> tuple[object, ...]:
        """Changes whenever the model's function changes; KV caches from another key are invalid."""
        stack = self.adapter_stack
        return (id(stack), stack.state_key() if stack is not None else (), self.fused)

    # --- token backends ----------------------------------------------------------------------
    def new_cache(self) -> Any:
        raise NotImplementedError

    def cache_len(self, cache: Any) -> int:
        raise NotImplementedError

    def trim_cache(self, cache: Any, n: int) -> None:
        raise NotImplementedError

    def prefill(self, ids: Sequence[int], cache: Any) -> np.ndarray:
        raise NotImplementedError

    def step(self, token: int, cache: Any) -> np.ndarray:
        raise NotImplementedError

    def forward_many(self, ids: Sequence[int], cache: Any) -> np.ndarray:
        """Feed ``ids`` after what ``cache`` holds; ``(len(ids), vocab)`` float32 logits, one row per
        position (verifies draft tokens in one pass)."""
        raise NotImplementedError

    def logits_for(self, ids: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    # --- text backends -----------------------------------------------------------------------
    def generate_text(self, prompt: str, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError(f"{self.name} backend decodes token by token; use generation.Generator")

    # --- adapters ----------------------------------------------------------------------------
    def set_adapter_stack(self, stack: AdapterStack | None) -> None:
        raise NotImplementedError

    def prepare_adapter_stack(self, stack: AdapterStack) -> None:
        """The slow part of installing ``stack`` that leaves the running model alone (checks, file
        conversions), so a server can do it before taking the generation lock for
        ``set_adapter_stack`` (which still checks). Raises what ``set_adapter_stack`` would. Default: nothing."""

    def update_adapter_weights(self) -> None:
        """Re-read the installed stack's weights (after ``stack.set_weights``) without reloading."""
        raise NotImplementedError

    def fuse(self) -> None:
        raise NotImplementedError

    def unfuse(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release memory held by the model (optional)."""
