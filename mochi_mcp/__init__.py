"""Floor 3: Mochi's MCP server (official ``mcp`` SDK) for Claude Code and Claude Desktop.

``server.py`` is the only module that touches the SDK; the tools are plain functions that take a
:class:`~mochi_mcp.workspace.Workspace` and an engine and return dicts:

- ``query.py``       ``domain_query``   (retrieval: ``mochi_model.retrieval``, index check: ``symbols.py``)
- ``complete.py``    ``complete_code``  (prompt assembly shared with the LSP)
- ``diff_tool.py``   ``generate_diff``  (diff writing and verification: ``patch.py``)
- ``patterns.py``    ``suggest_pattern`` and the resources
- (the engine comes from ``mochi_model.holder.EngineHolder``, shared with the LSP); ``generation.py`` limits and confidence;
  ``prompts.py`` templates; ``errors.py`` the error tree.
"""
