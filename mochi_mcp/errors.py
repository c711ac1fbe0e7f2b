"""Errors the MCP tools raise on purpose; the server turns each into a tool error with its message.

::

    MochiError (mochi_core.errors)
    └── McpError_
        ├── BadToolInput          missing/contradictory arguments, bad values
        │   ├── PathOutsideProject    file_path escapes the project root (traversal, symlink)
        │   └── FileUnreadable        missing, binary, too large, permission denied
        ├── IndexNotReady         no index for the project yet
        ├── GenerationTimeout     the model ran past the time limit
        └── DiffImpossible        no clean unified diff could be produced

The engine holder's ``mochi_model.holder.ModelUnavailable`` (the model failed to load) is a
``MochiError`` too and reaches the client the same way.

Messages are read by an AI client and by the person behind it: each says what went wrong and
what to do next.
"""

from __future__ import annotations

from mochi_core.errors import MochiError


class McpError_(MochiError):  # noqa: N801 - trailing underscore avoids clashing with mcp's MCPError
    """Root of the MCP tools' errors."""


class BadToolInput(McpError_):
    """An argument is missing, contradictory or invalid."""


class PathOutsideProject(BadToolInput):
    """A path resolves (after symlinks) outside the project root."""


class FileUnreadable(BadToolInput):
    """A file cannot be read as text."""


class IndexNotReady(McpError_):
    """The project has no index yet."""


class GenerationTimeout(McpError_):
    """Generation stopped at the time limit."""


class DiffImpossible(McpError_):
    """The model's answer could not be turned into a diff that applies."""
