"""The Mochi language server: the only place that registers pygls features.

Handlers are thin: parse params, call :class:`mochi_ls.session.Session`, convert with the
``lsp_*`` helpers. Inline completion is advertised when the client declares
``textDocument.inlineCompletion``; otherwise plain completion is (never both). Expected failures
(unknown document, bad position, huge or binary text, no model) give an empty result and a
``window/logMessage``; nothing a client sends takes the server down.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from mochi_ls import __version__
from mochi_ls.completer import CompletionInput
from mochi_ls.lsp_convert import (
    ACCEPT_COMMAND,
    STATUS_COMMAND,
    lsp_clamp_position,
    lsp_client_has_progress,
    lsp_client_wants_inline,
    lsp_completion_items,
    lsp_inline_items,
    lsp_language,
    lsp_position_ok,
    lsp_relative_path,
    lsp_uri_to_path,
)
from mochi_ls.lsp_protocol import MochiProtocol
from mochi_ls.session import AdapterChooser, EngineBuilder, Session
from mochi_model.types import Engine

logger = logging.getLogger(__name__)

STATUS_NOTIFICATION = "mochi/status"
_LEVELS = {"error": types.MessageType.Error, "warning": types.MessageType.Warning,
           "info": types.MessageType.Info}


class MochiLanguageServer(LanguageServer):
    """pygls server holding one :class:`Session`; also its :class:`Notifier` (thread-safe)."""

    def __init__(self, *, engine: Engine | None = None, build_engine: EngineBuilder | None = None,
                 choose_adapters: AdapterChooser | None = None, project: Path | None = None) -> None:
        super().__init__("mochi", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=MochiProtocol)
        self.session = Session(engine=engine, build_engine=build_engine, choose_adapters=choose_adapters,
                               notifier=self)
        self.session.text_of = self._text_of
        self.project_override = project
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending_problems: list[str] = []
        self.background: set[asyncio.Task[Any]] = set()

    # -- Notifier ------------------------------------------------------------------------------
    def _send(self, fn: Any, *args: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if running is loop:
                fn(*args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closing during shutdown
            pass

    def log(self, level: str, message: str) -> None:
        getattr(logger, level, logger.info)(message)
        self._send(self.window_log_message, types.LogMessageParams(type=_LEVELS.get(level, types.MessageType.Log),
                                                                   message=message))

    def show(self, level: str, message: str) -> None:
        self._send(self.window_show_message, types.ShowMessageParams(type=_LEVELS.get(level, types.MessageType.Info),
                                                                     message=message))

    def status(self, data: dict[str, Any]) -> None:
        self._send(self.protocol.notify, STATUS_NOTIFICATION, data)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Unexpected protocol-level errors go to the log, not to popups; unparsable JSON is answered."""
        if self.protocol.answer_unparsable(error, source):
            return
        self.log("error", f"Mochi: internal error: {error}")

    # -- helpers -------------------------------------------------------------------------------
    def _text_of(self, uri: str) -> str | None:
        doc = self.workspace.text_documents.get(unquote(uri))
        return doc.source if doc is not None else None

    def completion_input(self, uri: str, position: types.Position) -> tuple[CompletionInput, Any] | None:
        """Document state at the cursor, or None (logged) for unknown documents and bad positions."""
        doc = self.workspace.text_documents.get(unquote(uri))
        if doc is None:
            self.log("warning", f"Mochi: completion for a document that is not open: {uri}")
            return None
        lines = doc.lines
        if not lsp_position_ok(len(lines), position):
            self.log("warning", f"Mochi: position {position.line}:{position.character} is outside {uri}")
            return None
        pos = lsp_clamp_position(lines, position, doc.position_codec.client_num_units)
        position.line, position.character = pos.line, pos.character  # the answer's range uses it too
        offset = doc.offset_at_position(pos)
        path = lsp_relative_path(uri, self.session.root)
        if not path:
            fs_path = lsp_uri_to_path(uri)
            path = fs_path.name if fs_path is not None else uri
        inp = CompletionInput(uri=uri, path=path, language=lsp_language(doc.language_id, uri), text=doc.source,
                              offset=offset)
        return inp, doc

    def root_from(self, params: types.InitializeParams) -> Path | None:
        if self.project_override is not None:
            return self.project_override
        uri = None
        if params.workspace_folders:
            uri = params.workspace_folders[0].uri
        elif params.root_uri:
            uri = params.root_uri
        elif params.root_path:
            return Path(params.root_path)
        path = lsp_uri_to_path(uri) if uri else None
        return path if path is not None and path.is_dir() else None

    async def start_index(self) -> None:
        """Open the index off the event loop (LanceDB import and open take seconds), index if empty."""
        loop = asyncio.get_running_loop()
        try:
            needed = await loop.run_in_executor(self.session.io_pool, self.session.index_on_start)
        except Exception as exc:  # background task top level: report, keep serving
            logger.exception("opening the index failed")
            self.log("error", f"Mochi: cannot open the project index: {exc}")
            needed = False
        if needed:
            await self.index_workspace()
            return
        self.session.index_ready.set()
        if self.session.index.error:
            self.log("warning", f"Mochi: {self.session.index.error}; completions use no project context")

    async def index_workspace(self) -> None:
        """Background index of the workspace with work-done progress."""
        token = f"mochi-index-{uuid.uuid4().hex[:8]}"
        has_progress = lsp_client_has_progress(self.client_capabilities)
        last = [0.0]
        summary = "indexing stopped"
        begun = False
        try:
            if has_progress:
                await self.work_done_progress.create_async(token)
                begun = True
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                    title="Mochi: indexing", message="scanning the workspace", percentage=0, cancellable=False))
            self.status({"state": "indexing"})

            def report(done: int, total: int, message: str) -> None:
                now = time.monotonic()
                if not has_progress or now - last[0] < 0.2:
                    return
                last[0] = now
                pct = int(100 * done / total) if total else None
                self._send(self.work_done_progress.report, token,
                           types.WorkDoneProgressReport(message=f"{done}/{total} {message}".strip(), percentage=pct))

            loop = asyncio.get_running_loop()
            stats = await loop.run_in_executor(self.session.io_pool, self.session.index.update_all, report)
            summary = f"indexed: {stats}" if stats is not None else "index unavailable"
            self.log("info", f"Mochi: {summary}")
        except Exception as exc:  # background task top level: report, keep serving
            logger.exception("background index failed")
            summary = f"indexing failed: {exc}"
            self.log("error", f"Mochi: {summary}")
        finally:
            if begun:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=summary[:200]))
            self.status({"state": "indexed"})
            self.session.index_ready.set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def create_server(*, engine: Engine | None = None, build_engine: EngineBuilder | None = None,
                  choose_adapters: AdapterChooser | None = None, project: Path | None = None) -> MochiLanguageServer:
    """Build a server with every feature registered.

    Args:
        engine: a ready engine (tests pass a fake).
        build_engine: ``(config, root) -> Engine`` for lazy background loading (``mochi lsp``).
        choose_adapters: ``(config, root) -> AdapterChoice`` that ``build_engine`` loads; lets the
            server follow adapters changed on disk.
        project: project root; default: the client's first workspace folder.
    """
    server = MochiLanguageServer(engine=engine, build_engine=build_engine, choose_adapters=choose_adapters,
                                 project=project)

    async def inline_completion(ls: MochiLanguageServer, params: types.InlineCompletionParams):
        found = ls.completion_input(params.text_document.uri, params.position)
        if found is None:
            return None
        sug = await ls.session.complete(found[0])
        return lsp_inline_items(sug, params.position) if sug is not None else None

    async def completion(ls: MochiLanguageServer, params: types.CompletionParams):
        found = ls.completion_input(params.text_document.uri, params.position)
        if found is None:
            return None
        inp, doc = found
        sug = await ls.session.complete(inp)
        if sug is None:
            return types.CompletionList(is_incomplete=True, items=[])
        line_start = inp.text.rfind("\n", 0, inp.offset) + 1
        return lsp_completion_items(sug, inp.text[line_start : inp.offset], params.position,
                                    doc.position_codec.client_num_units)

    @server.feature(types.INITIALIZE)
    def initialize(ls: MochiLanguageServer, params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_event_loop()
        ls.pending_problems = ls.session.configure(ls.root_from(params), params.initialization_options)
        if lsp_client_wants_inline(params.capabilities):
            ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(_guard(inline_completion))
        else:
            ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))(
                _guard(completion))

    @server.feature(types.INITIALIZED)
    def initialized(ls: MochiLanguageServer, params: types.InitializedParams) -> None:
        if ls.pending_problems:
            ls.show("warning", "Mochi settings: " + "; ".join(ls.pending_problems) + " (defaults used)")
        ls.session.start()
        ls.spawn(ls.start_index())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: MochiLanguageServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        caps = ls.client_capabilities.workspace
        if not settings and caps is not None and caps.configuration:
            pulled = await ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="mochi")]))
            settings = pulled[0] if pulled else None
        problems = ls.session.change_settings(settings)
        if problems:
            ls.show("warning", "Mochi settings: " + "; ".join(problems) + " (defaults used)")
        ls.log("info", "Mochi: settings applied")

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: MochiLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        change = params.content_changes[-1] if params.content_changes else None
        line = change.range.start.line if change is not None and hasattr(change, "range") else 0
        uri = params.text_document.uri
        rel = lsp_relative_path(uri, ls.session.root)
        if ls.session.root is not None and not rel:
            return  # a document outside the project: never a "recent edit" in another file's prompt
        previous = ls.session.recent.last_line(uri)
        ls.session.recent.note(uri, rel or uri, line)
        if change is not None and hasattr(change, "range") and (previous is None or abs(line - previous) >= JUMP_LINES):
            # the cursor jumped: warm the prompt of the new place before the person pauses there
            end = change.range.start
            lines = change.text.split("\n")
            pos = types.Position(line=end.line + len(lines) - 1,
                                 character=(end.character if len(lines) == 1 else 0) + len(lines[-1]))
            found = ls.completion_input(uri, pos)
            if found is not None:
                ls.session.warm(found[0])

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=True))
    async def did_save(ls: MochiLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        text = params.text if params.text is not None else ls._text_of(uri)
        rel = lsp_relative_path(uri, ls.session.root)
        if await ls.session.save(rel, text):
            ls.log("info", f"Mochi: re-indexed {rel}")

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: MochiLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.session.gate.cancel_document(params.text_document.uri)
        ls.session.completer.forget(params.text_document.uri)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: MochiLanguageServer, *args: Any) -> None:
        ls.session.shutdown()

    @server.command(ACCEPT_COMMAND)
    def accept(ls: MochiLanguageServer, *args: Any) -> bool:
        sid = args[0] if args and isinstance(args[0], str) else ""
        return ls.session.accept(sid) if sid else False

    @server.command(STATUS_COMMAND)
    def status(ls: MochiLanguageServer, *args: Any) -> dict[str, Any]:
        return ls.session.status()

    return server


JUMP_LINES = 3  # an edit this many lines from the document's last one is a jump (warm-up)


def _guard(handler: Any) -> Any:
    """Top-level request boundary: an unexpected error is logged and answered with an empty result."""

    async def guarded(ls: MochiLanguageServer, params: Any) -> Any:
        try:
            return await handler(ls, params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # request dispatch top level: never crash, tell the user why
            logger.exception("completion failed")
            ls.log("error", f"Mochi: completion failed: {exc}")
            return None

    guarded.__name__ = handler.__name__
    return guarded
