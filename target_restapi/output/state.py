"""Emit each STATE only once every record received before it has been delivered.

Records get increasing sequence numbers on arrival. Records travel in units (a pending
batch, then its request); a unit is named by the sequence of its first record, which no
other unit shares. A STATE remembers how many records came before it; it may be emitted
once no open unit starts below that count. Thread-safe, so concurrent senders can ack.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable


class StateTracker:
    """Sequence records, hold STATE messages, release them as deliveries are acknowledged."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._next_seq = 0
        self._open: list[int] = []
        self._closed: set[int] = set()
        self._pending: deque[tuple[int, bytes]] = deque()
        self._last_emitted: bytes | None = None

    def next_seq(self) -> int:
        """Number the next record (called from the single reading thread)."""
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    def skip(self, count: int) -> None:
        """Number `count` records that join a unit already open (reading thread only)."""
        self._next_seq += count

    def open(self, first_seq: int) -> None:
        """A unit starting at `first_seq` now holds undelivered records."""
        with self._lock:
            heapq.heappush(self._open, first_seq)

    def close(self, first_seq: int) -> None:
        """The unit starting at `first_seq` is delivered, or its failure was recorded."""
        with self._lock:
            self._closed.add(first_seq)
            self._release()

    def state(self, value: bytes) -> None:
        """A STATE arrived after every record numbered so far."""
        with self._lock:
            self._pending.append((self._next_seq, value))
            self._release()

    @property
    def held(self) -> int:
        """STATE messages waiting for deliveries."""
        return len(self._pending)

    def _release(self) -> None:
        while self._open and self._open[0] in self._closed:
            self._closed.discard(heapq.heappop(self._open))
        low = self._open[0] if self._open else self._next_seq
        newest = None
        while self._pending and self._pending[0][0] <= low:
            newest = self._pending.popleft()[1]
        if newest is not None and newest != self._last_emitted:
            self._last_emitted = newest
            self._emit(newest)
