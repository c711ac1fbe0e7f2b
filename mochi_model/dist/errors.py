"""Errors raised by adapter distribution (a subtree of :class:`MochiError`)::

    DistError                  anything about packing, fetching, installing adapters
    ├── ManifestError          missing, unreadable or invalid manifest.json / unknown schema version
    ├── UnsafeArchive          traversal, absolute paths, links, devices, oversized members
    ├── ChecksumMismatch       a file's sha256 or size differs from the manifest (corrupt/truncated)
    ├── BaseModelMismatch      adapter built for another base model (``--force`` overrides)
    ├── WeightsMismatch        manifest and config disagree, or the weights do not fit the declared model
    ├── SourceError            a source cannot be read or written (network, missing extra, 404)
    └── AdapterNotFound        ``NAME[@VERSION]`` is not installed
"""

from __future__ import annotations

from mochi_core.errors import MochiError


class DistError(MochiError):
    """Packing, fetching or installing an adapter failed."""


class ManifestError(DistError):
    """manifest.json is missing, unreadable or does not follow a known schema."""


class UnsafeArchive(DistError):
    """The archive holds something that must never be extracted."""


class ChecksumMismatch(DistError):
    """A file does not match the sha256/size recorded in the manifest."""


class BaseModelMismatch(DistError):
    """The adapter was trained for a different base model than the configured one."""


class WeightsMismatch(DistError):
    """The archive contradicts itself: its weights do not fit the model its manifest/config declare."""


class SourceError(DistError):
    """A source or upload destination cannot be reached, read or written."""


class AdapterNotFound(DistError):
    """No installed adapter matches the requested name/version."""
