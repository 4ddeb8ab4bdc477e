"""The lane of the common batch case: records collected by the reader, settled in groups.

When a stream's records go into the body as received (no shaping, a URL and headers that
no record changes, no deletes, no byte cap, no per-record answers) and its SCHEMA compiles
to a msgspec type, a record needs only its raw JSON checked by that type: the reader does
that and collects it (singer_input/reader.py, `Lane`). Here a group of them joins the open
body at once: counted, numbered, kept for the error file, hashed for an idempotency key,
the last one's keys kept for a response file. The first
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

    __slots__ = (
        "_full",
        "_key",
        "_last_keys",
        "_pendings",
        "_send",
        "_size",
        "_tally",
        "_tracker",
        "check",
    )

    def __init__(
        self,
        check: Callable[[Any], object],
        group: tuple[MutableMapping[Any, Pending], Any, float],
        counters: tuple[Tally, StateTracker],
        send: Callable[[Pending], None],
        full: Callable[[Any], None],
        last_keys: Callable[[Any], dict[str, Any]] | None,
    ) -> None:
        """`group`: the sink's open bodies, the key of the lane's, the size that cuts it.

        `full` is the sink's complete path for one record; `last_keys` gives a record's
        keys when a request keeps those of its last record (response files).
        """
        self.check = check
        self._pendings, self._key, self._size = group
        (self._tally, self._tracker), self._send, self._full = counters, send, full
        self._last_keys = last_keys

    def room(self) -> int:
        """Records the open body still takes; 0 when none is open (the full path opens it)."""
        pending = self._pendings.get(self._key)
        if pending is None:
            return 0
        return int(min(self._size - pending.body.count, 1 << 30))

    def settle(self, records: list[Any]) -> None:
        """Append, count and number them, sending each body once it is full.

        Usually they fit the open body; if it was sent meanwhile (its age, while the tap
        was silent), the first of them goes the full way and opens the next.
        """
        start = 0
        while start < len(records):
            pending = self._pendings.get(self._key)
            if pending is None:
                self._full(records[start])
                start += 1
                continue
            body = pending.body
            group = records[start : start + int(min(self._size - body.count, len(records)))]
            start += len(group)
            self._tally.received += len(group)
            # The body's unit is named by its first record: the rest only need numbers.
            self._tracker.skip(len(group))
            body.extend(group)  # type: ignore[union-attr] # raw JSON: a body of bytes
            if pending.records is not None:
                pending.records.extend(group)
            if pending.digest is not None:  # as the full path: each record as received
                pending.digest.update(b"".join(group))
            if self._last_keys is not None:
                pending.keys[1:] = [self._last_keys(group[-1])]
            if body.count >= self._size:
                del self._pendings[self._key]
                self._send(pending)
