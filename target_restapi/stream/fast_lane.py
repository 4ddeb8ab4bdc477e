"""The lane of the common batch case: records collected by the reader, settled in groups.

When a stream's records go into the body as received (no shaping, a URL and headers that
no record changes, no idempotency key, no per-record keys kept, no deletes, no byte cap)
and its SCHEMA compiles to a msgspec type, a record needs only its raw JSON checked by
that type: the reader does that and collects it (singer_input/reader.py, `Lane`). Here a
group of them joins the open body at once, numbered and counted as a group. The first
record of a body, and any record the type refuses, go through the sink's full `accept`,
which decides exactly as before; it opens the body the lane then fills.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from target_restapi.output.progress import Tally
from target_restapi.output.state import StateTracker
from target_restapi.stream.pending import Pending


class BatchLane:
    """Fills one group's open body with checked raw records (see the module's docstring)."""

    __slots__ = ("_key", "_pendings", "_send", "_size", "_tally", "_tracker", "check")

    def __init__(
        self,
        check: Callable[[Any], object],
        pendings: MutableMapping[Any, Pending],
        key: Any,
        size: float,
        tally: Tally,
        tracker: StateTracker,
        send: Callable[[Pending], None],
    ) -> None:
        """`pendings` are the sink's open bodies, `key` the one group's; `size` cuts it."""
        self.check = check
        self._pendings, self._key, self._size = pendings, key, size
        self._tally, self._tracker, self._send = tally, tracker, send

    def room(self) -> int:
        """Records the open body still takes; 0 when none is open (the full path opens it)."""
        pending = self._pendings.get(self._key)
        if pending is None:
            return 0
        left = self._size - pending.body.count
        return int(left) if left < 1 << 30 else 1 << 30

    def settle(self, records: list[Any]) -> None:
        """Append, count and number them; send the body once it is full."""
        pending = self._pendings[self._key]
        self._tally.received += len(records)
        # The body's unit is named by its first record: the rest only need numbers.
        self._tracker.skip(len(records))
        pending.body.extend(records)  # type: ignore[union-attr] # raw JSON: a body of bytes
        if pending.records is not None:
            pending.records.extend(records)
        if pending.body.count >= self._size:
            del self._pendings[self._key]
            self._send(pending)
