"""Errors raised by the project index (`mochi_index`).

Tree (under :class:`mochi_core.errors.MochiError`)::

    IndexError_                 anything the index cannot do (unreadable store, bad path)
    ├── IndexMissing            no index exists and ``create=False`` was asked
    ├── IndexDamaged            a store file is missing, truncated or unreadable (``update`` rebuilds it)
    └── IndexBusy               another process holds the write lock for too long

A file that cannot be parsed is not an error: it is logged and kept out (``skip='parse_error'``).

The trailing underscore avoids shadowing the builtin ``IndexError``.
"""

from __future__ import annotations

from mochi_core.errors import MochiError


class IndexError_(MochiError):  # noqa: N801 - name fixed by the architecture contract
    """The project index could not do what was asked."""


class IndexMissing(IndexError_):
    """No index exists for this project (run `mochi index`)."""


class IndexDamaged(IndexError_):
    """The store cannot be read (a truncated or missing file); the next ``update`` rebuilds it."""


class IndexBusy(IndexError_):
    """Another process is writing the index and did not finish in time."""

