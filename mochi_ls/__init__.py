"""Mochi's language server (pygls): inline completions with the project's context.

Start it with ``mochi lsp``; build one in-process with :func:`mochi_ls.server.create_server`.
Layout: ``server.py`` is the only module that registers features (``lsp_convert.py`` and
``lsp_protocol.py`` are the other protocol-facing ones); ``session.py`` holds the per-connection state and request flow; ``completer.py``, ``cache.py``,
``scheduling.py``, ``engine_host.py``, ``index_host.py``, ``recent.py`` and ``settings.py`` are
plain modules testable without a protocol.
"""

__version__ = "0.1.0"
