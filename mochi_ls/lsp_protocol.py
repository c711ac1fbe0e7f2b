"""pygls protocol tweaks: every request gets an answer, as JSON-RPC 2.0 and LSP require.

pygls 2.1 leaves a client waiting forever in four cases; here each gets an error response:

* a request whose params cannot be structured → ``InvalidParams`` (a notification is logged);
* a request without a method, or a JSON value that is no JSON-RPC 2.0 message at all (an array,
  no ``"jsonrpc": "2.0"``) → ``InvalidRequest`` (-32600) with its id, or ``null``;
* a body that is not JSON (cut off, not UTF-8, nested too deep) → ``ParseError`` (-32700, id ``null``);
  pygls' read loop reports it through :meth:`MochiProtocol.answer_unparsable`;
* a request after ``shutdown`` other than ``exit`` → ``InvalidRequest`` (pygls drops it silently).

Each answered message then becomes a no-op, and the server keeps serving.
"""

from __future__ import annotations

import json
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCProtocol, RPCRequest

IGNORED_METHOD = "$/mochi/ignored"  # what a malformed message becomes once answered
_IGNORED = JsonRPCNotification(method=IGNORED_METHOD, params=None, jsonrpc=JsonRPCProtocol.VERSION)


class MochiProtocol(LanguageServerProtocol):
    """pygls protocol that answers malformed, method-less, unparsable and post-shutdown requests."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        # Called for every JSON object of a body, innermost first; only the message has "jsonrpc".
        if "jsonrpc" in data and "id" in data and not {"method", "result", "error"} & data.keys():
            self._send_error(data["id"], types.ErrorCodes.InvalidRequest,
                             "Mochi: invalid request: it has no method")
            return _IGNORED
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError):
            method = str(data.get("method", ""))
            message = f"Mochi: invalid params for {method or 'a message'}; ignored"
            if "id" in data and method:
                self._send_error(data["id"], types.ErrorCodes.InvalidParams, message)
            self._log_warning(message)
            return _IGNORED

    def handle_message(self, message: Any) -> None:
        if getattr(message, "jsonrpc", None) != JsonRPCProtocol.VERSION:
            # A JSON value that is not a JSON-RPC 2.0 message (pygls would raise or drop it).
            msg_id = message.get("id") if isinstance(message, dict) else None
            self._send_error(msg_id, types.ErrorCodes.InvalidRequest,
                             'Mochi: invalid request: not a JSON-RPC 2.0 message (needs "jsonrpc": "2.0")')
            return
        if self._shutdown and isinstance(message, RPCRequest) and message.method != types.EXIT:
            self._send_error(message.id, types.ErrorCodes.InvalidRequest,
                             f"Mochi: the server is shutting down; {message.method} is refused (send exit)")
            return
        super().handle_message(message)

    def answer_unparsable(self, error: Exception, source: Any) -> bool:
        """Answer a body the read loop could not parse with ParseError; False for any other error."""
        if source is not JsonRpcException or not isinstance(
                error, (json.JSONDecodeError, UnicodeDecodeError, RecursionError)):
            return False
        self._send_error(None, types.ErrorCodes.ParseError, f"Mochi: parse error: {str(error)[:200]}")
        self._log_warning(f"Mochi: a message that is not JSON was answered with a parse error ({error})")
        return True

    def _send_error(self, msg_id: Any, code: types.ErrorCodes, message: str) -> None:
        """An error response; ``id`` is ``null`` when the request's id cannot be read (JSON-RPC 2.0 §5)."""
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool):
            msg_id = None
        # A plain dict: lsprotocol's ResponseErrorMessage would drop a null id instead of sending it.
        self._send_data({"jsonrpc": JsonRPCProtocol.VERSION, "id": msg_id,
                         "error": {"code": int(code), "message": message}})

    def _log_warning(self, message: str) -> None:
        log = getattr(self._server, "log", None)
        if callable(log):
            log("warning", message)
