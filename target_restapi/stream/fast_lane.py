"""The per-record path of the common batch case, in one Python call per record.

When a stream's records go into the body as received (no shaping, a URL and headers that
no record changes, no idempotency key, no per-record keys kept, no deletes, no byte cap)
and its SCHEMA compiles to a msgspec type, a record needs only: its raw JSON checked by
that type, a sequence number, and its bytes appended to the open body. Everything else,
the first record of a body, a record the type refuses or cannot decode, goes through the
sink's full `accept`, which decides exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from target_restapi.sinks import RestSink

Accept = Callable[[bytes], None]


def fast_lane(sink: RestSink, full: Accept) -> Accept | None:
    """An `accept` for `sink` doing only the work its records need, or None when it can't.

    `full` is the sink's complete path, taken whenever the lane is not sure.
    """
    settings = sink.settings
    validator = sink._validator_kept
    decoder = None if validator is None else validator.raw_decoder
    if (
        decoder is None
        or sink._needs_record
        or sink._deletes is not None
        or settings.batch_max_bytes is not None
        or settings.request_mode not in ("batch", "one")
    ):
        return None
    decode = decoder.decode
    pendings = sink._pending
    key = sink._fixed_route[0]  # type: ignore[index] # set: not _needs_record
    tally = sink.tally
    next_seq = sink.tracker.next_seq
    size = settings.batch_size if settings.request_mode == "batch" else float("inf")
    send = sink._delivery.send

    def accept(raw: bytes) -> None:
        """Check, number and append one record; its first record opens a body the full way."""
        pending = pendings.get(key)
        if pending is None:
            return full(raw)
        try:
            decode(raw)
        except Exception:  # refused or not JSON: the full path judges it and says why
            return full(raw)
        tally.received += 1
        next_seq()  # the body's unit is named by its first record: the rest only count
        body = pending.body
        body.add(raw)  # type: ignore[arg-type] # records as received: a body of bytes
        if pending.records is not None:
            pending.records.add(raw)
        if body.count >= size:
            del pendings[key]
            send(pending)
        return None

    return accept
