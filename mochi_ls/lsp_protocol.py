"""pygls protocol tweak: a request with malformed params gets an InvalidParams error response.

pygls drops a message it cannot structure, so the client would wait forever for an answer. Here
a request is answered with ``InvalidParams`` and a notification is logged; both then become a
no-op notification.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCProtocol

IGNORED_METHOD = "$/mochi/ignored"  # what a malformed message becomes once answered


class MochiProtocol(LanguageServerProtocol):
    """pygls protocol that answers requests with malformed params with InvalidParams.

    pygls drops a message it cannot structure (the client would wait forever); here a request
    gets an error response and a notification is logged, and both are then ignored.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError):
            method = str(data.get("method", ""))
            message = f"Mochi: invalid params for {method or 'a message'}; ignored"
            if "id" in data and method:
                self._send_response(data["id"], error=types.ResponseError(
                    code=types.ErrorCodes.InvalidParams, message=message))
            log = getattr(self._server, "log", None)
            if callable(log):
                log("warning", message)
            return JsonRPCNotification(method=IGNORED_METHOD, params=None, jsonrpc=JsonRPCProtocol.VERSION)
