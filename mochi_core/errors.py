"""The root of Mochi's error tree.

Each package hangs its own subtree here so callers can catch one thing::

    MochiError
    ├── ConfigError            bad .mochi/config.toml value, bad flag
    ├── IndexError_ (mochi_index.errors)   store missing, unreadable, parse failures
    ├── ModelError  (mochi_model.errors)   backend missing, model/adapter load, generation
    │   ├── BackendUnavailable
    │   ├── AdapterMismatch
    │   └── GenerationCancelled
    ├── TrainError  (mochi_model.errors)
    └── DistError   (mochi_cli / distribution)  pack, install, checksum, unsafe archive

Messages are written for users: they say what was wrong and what to do.
"""

from __future__ import annotations


class MochiError(Exception):
    """Base class of every error Mochi raises on purpose."""


class ConfigError(MochiError):
    """A configuration value (file, flag, LSP setting) is invalid."""
