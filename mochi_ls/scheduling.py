"""Debounce and supersede: the newest completion request per document wins.

Plain asyncio + threading, no protocol. The server opens a :class:`Ticket` for each request;
opening one cancels the previous ticket of the same document (its :class:`CancelToken` stops the
decoder between tokens, in the worker thread). Debounce waits on the ticket, so a superseded
request wakes up at once instead of sleeping out its delay.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from mochi_model.types import CancelToken


@dataclass
class GateStats:
    opened: int = 0
    superseded: int = 0  # cancelled because a newer request for the same document arrived
    cancelled: int = 0  # cancelled by the client ($/cancelRequest) or shutdown
    debounced: int = 0  # superseded while still waiting out the debounce (no engine work)


@dataclass(eq=False)
class Ticket:
    key: str
    seq: int
    token: CancelToken = field(default_factory=CancelToken)
    created: float = field(default_factory=time.perf_counter)
    reason: str = ""  # why it was cancelled: superseded | cancelled
    _wake: asyncio.Event | None = None

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def cancel(self, reason: str) -> None:
        if not self.token.cancelled:
            self.reason = reason
            self.token.cancel()
        if self._wake is not None:
            self._wake.set()


class RequestGate:
    """Tracks the live request of each document (call from the event-loop thread)."""

    def __init__(self) -> None:
        self._live: dict[str, Ticket] = {}
        self._seq = itertools.count(1)
        self.stats = GateStats()

    def open(self, key: str) -> Ticket:
        """Start a request for document ``key``; the previous one (if still live) is superseded."""
        prev = self._live.get(key)
        if prev is not None and not prev.cancelled:
            prev.cancel("superseded")
            self.stats.superseded += 1
        ticket = Ticket(key=key, seq=next(self._seq))
        self._live[key] = ticket
        self.stats.opened += 1
        return ticket

    async def debounce(self, ticket: Ticket, delay_s: float) -> bool:
        """Wait ``delay_s`` unless superseded first. Returns True when the request should run."""
        if delay_s > 0 and not ticket.cancelled:
            ticket._wake = asyncio.Event()
            try:
                await asyncio.wait_for(ticket._wake.wait(), timeout=delay_s)
            except TimeoutError:
                pass
        if ticket.cancelled:
            self.stats.debounced += 1
            return False
        return True

    def cancel(self, ticket: Ticket) -> None:
        """The client cancelled this request (``$/cancelRequest``)."""
        if not ticket.cancelled:
            ticket.cancel("cancelled")
            self.stats.cancelled += 1

    def close(self, ticket: Ticket) -> None:
        if self._live.get(ticket.key) is ticket:
            del self._live[ticket.key]

    def cancel_document(self, key: str) -> None:
        """Cancel whatever runs for ``key`` (document closed)."""
        ticket = self._live.pop(key, None)
        if ticket is not None:
            self.cancel(ticket)

    def cancel_all(self) -> None:
        for key in list(self._live):
            self.cancel_document(key)

    def is_latest(self, ticket: Ticket) -> bool:
        return self._live.get(ticket.key) is ticket
