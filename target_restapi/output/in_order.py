"""Writes that keep the order requests were sent in, however their answers overtake.

Requests of a stream may be in flight together and answer in any order. The response
file's per-record lines must still follow the input: a request's write waits until every
request sent before it has written, or ended without a write. It then runs on the thread
that ended the oldest request, before that request acknowledges its records to STATE, so
no STATE passes a record whose line is not written.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Write = Callable[[], None]


class InOrder:
    """Runs each request's write once all earlier requests have run theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: deque[int] = deque()  # requests sent and not yet written, oldest first
        self._ready: dict[int, Write | None] = {}  # ended, waiting for an earlier request

    def sent(self, request: int) -> None:
        """A request was handed over to be sent (called in input order)."""
        with self._lock:
            self._sent.append(request)

    def ended(self, request: int, write: Write | None = None) -> None:
        """`request` is over; its `write` (None: nothing to write) runs in its turn.

        Only its first call counts: a request that wrote may end again without a write.
        """
        with self._lock:
            if request in self._ready or request not in self._sent:
                return
            self._ready[request] = write
            while self._sent and self._sent[0] in self._ready:
                self._run(self._ready.pop(self._sent.popleft()))

    def flush(self) -> None:
        """At close: the writes of ended requests, in order; requests never sent are skipped."""
        with self._lock:
            while self._sent:
                self._run(self._ready.pop(self._sent.popleft(), None))

    @staticmethod
    def _run(write: Write | None) -> None:
        if write is not None:
            write()
