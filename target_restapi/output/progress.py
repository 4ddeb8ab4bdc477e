"""Progress lines during a run (at most one per interval) and the summary at its end.

A background thread reads the sinks' tallies, so the record path pays nothing for it.
The summary is logged once per run, per stream and in total, as text and as one JSON
line. Its counts add up: received = delivered + failed + interrupted + not_sent; deletes
(records sent as delete requests) are among them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


@dataclasses.dataclass(slots=True)
class Tally:
    """What happened to a stream's records, for the run summary.

    Each record received ends in exactly one of delivered, failed, interrupted (its
    request was cut short by a stop) or not_sent (never handed to the server: pending or
    queued when the run ended, or a dry run), whatever ends the run. `deletes` counts the
    records that came deleted and went as delete requests (hard_delete), whatever became
    of them.
    """

    received: int = 0
    delivered: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    interrupted: int = 0
    not_sent: int = 0
    deletes: int = 0


COUNTS = (
    "received", "delivered", "failed", "interrupted", "not_sent", "requests", "retries",
    "deletes",
)  # fmt: skip


def totals(tallies: Iterable[Tally]) -> dict[str, int]:
    """The counts of several streams added up."""
    out = dict.fromkeys(COUNTS, 0)
    for tally in tallies:
        for name in COUNTS:
            out[name] += getattr(tally, name)
    return out


def describe(counts: dict[str, int], seconds: float) -> str:
    """One readable line: the counts and the delivery rate."""
    rate = counts["delivered"] / seconds if seconds > 0 else 0.0
    return (
        f"{counts['received']} records received, {counts['delivered']} delivered, "
        f"{counts['failed']} failed, {counts['interrupted']} interrupted, "
        f"{counts['not_sent']} not sent, in {counts['requests']} requests "
        f"({counts['retries']} retries), {counts['deletes']} deletes, {rate:,.0f} records/s"
    )


class Progress:
    """Logs progress every `interval` seconds while the run goes on, then a summary."""

    def __init__(
        self,
        tallies: Callable[[], dict[str, Any]],
        logger: logging.Logger,
        interval: float,
    ) -> None:
        self._tallies = tallies
        self._logger = logger
        self._interval = interval
        self._started = time.monotonic()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        """Begin the periodic progress lines."""
        self._thread.start()

    def summary(self) -> None:
        """Stop the progress lines; log each stream's and the total summary, once."""
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        seconds = time.monotonic() - self._started
        streams = self._tallies()
        for stream, tally in streams.items():
            self._logger.info(
                "summary of stream '%s': %s", stream, describe(totals([tally]), seconds)
            )
        total = totals(streams.values())
        self._logger.info("summary: %s in %.1f s", describe(total, seconds), seconds)
        record = {
            "summary": {
                "streams": {name: dataclasses.asdict(t) for name, t in streams.items()},
                "total": total,
                "seconds": round(seconds, 3),
            }
        }
        self._logger.info("%s", json.dumps(record))

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            seconds = time.monotonic() - self._started
            counts = totals(self._tallies().values())
            self._logger.info("progress: %s", describe(counts, seconds))
