"""Errors raised by the model engine (``mochi_model``).

The subtree hangs under :class:`mochi_core.errors.MochiError`::

    ModelError                    anything the engine refuses or fails to do
    ├── BackendUnavailable        the torch/mlx extra is not installed, or no remote server
    ├── ModelNotFound             a preset, folder, GGUF file or hub repo that cannot be found/fetched
    ├── AdapterError              an adapter folder that cannot be read or is malformed
    │   └── AdapterMismatch       an adapter trained for another base model (or other shapes)
    └── GenerationCancelled       raised only where a caller asked for an exception on cancel

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

from mochi_core.errors import MochiError


class ModelError(MochiError):
    """The model engine could not do what was asked."""


class BackendUnavailable(ModelError):
    """A backend's optional dependencies are missing (or a remote server cannot be reached)."""

    @classmethod
    def missing_extra(cls, backend: str, extra: str, exc: BaseException | None = None) -> BackendUnavailable:
        detail = f" ({exc})" if exc else ""
        return cls(
            f"the {backend} backend is not installed{detail}; install it with "
            f"`pip install 'mochi-code[{extra}]'` or choose another backend with --backend"
        )


class ModelNotFound(ModelError):
    """A model source (preset name, folder, GGUF file, hub repo) cannot be found or fetched."""


class AdapterError(ModelError):
    """An adapter folder is missing, unreadable or malformed."""


class AdapterMismatch(AdapterError):
    """An adapter was trained for a different base model than the one loaded."""


class GenerationCancelled(ModelError):
    """A generation was cancelled (most APIs return ``finish_reason="cancelled"`` instead)."""


class TrainError(ModelError):
    """Training failed (raised by ``mochi_model.training``)."""
