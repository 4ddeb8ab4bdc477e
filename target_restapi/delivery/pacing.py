"""Pacing: how fast requests start, and how many are in flight at once.

A rate shared by all threads, and a limit on requests in flight that backs off when
the server answers 429 Too Many Requests. Both gate each attempt, retries included, not
each job: a request waiting to be retried holds no place, so after a 429 the server
sees fewer requests at once, retries included.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Protocol

from target_restapi.errors import Stopped

logger = logging.getLogger("target-restapi")


class Pace(Protocol):
    """What gates each attempt's start: this process's RateLimit, or a SharedRateLimit."""

    def wait(self, stop: threading.Event) -> None:
        """Block until a request may start; raise Stopped when a stop is asked for."""


class RateLimit:
    """At most `per_second` request starts a second, evenly spaced, whatever the threads.

    A token bucket that holds one token: each start books the next free time slot, so
    `n` requests take at least `(n - 1) / per_second` seconds and never come in bursts.
    Eight lines of arithmetic; the libraries for it sleep where a stop can't wake them.
    """

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, per_second: float | None) -> RateLimit | None:
        """A limit, or None when no rate is set."""
        return cls(per_second) if per_second else None

    def wait(self, stop: threading.Event) -> None:
        """Block until this request may start; raise Stopped when a stop is asked for."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now and stop.wait(start - now):
            raise Stopped
        with self._lock:  # a thread that woke late pushes the next slot back with it
            self._next = max(self._next, time.monotonic() + self._interval)


class AdaptiveLimit:
    """A limit on requests in flight: halved on each 429, grown back by one on each 2xx.

    Used as `with limit:` around one attempt; `answered(status)` is the server's signal.
    Taken once per request: a plain lock, and the Condition only when someone waits.
    """

    def __init__(self, most: int, name: str) -> None:
        self._most = most
        self._name = name
        self._limit = most
        self._busy = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    @classmethod
    def of(cls, most: int, name: str) -> AdaptiveLimit | None:
        """A limit, or None for one request at a time (nothing to back off from)."""
        return cls(most, name) if most > 1 else None

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return self._limit

    def __enter__(self) -> None:
        with self._lock:
            if self._busy >= self._limit:
                self._waiting += 1
                try:
                    self._changed.wait_for(lambda: self._busy < self._limit)
                finally:
                    self._waiting -= 1
            self._busy += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._busy -= 1
            if self._waiting:
                self._changed.notify()

    def answered(self, status: int) -> None:
        """Back off on 429, grow back on success; other answers say nothing about load."""
        if status != 429 and self._limit == self._most:  # nothing to change: no lock
            return
        with self._lock:
            if status == 429 and self._limit > 1:
                self._limit //= 2
                logger.info(
                    "%s: answered 429 Too Many Requests: in-flight limit now %d (of %d)",
                    self._name,
                    self._limit,
                    self._most,
                )
            elif 200 <= status < 300 and self._limit < self._most:
                self._limit += 1
                if self._waiting:
                    self._changed.notify()
