"""When and how long to wait before retrying a request.

backoff's exponential policy with full jitter, raised by an answer's Retry-After,
capped by the user.

Pure: no I/O. The transport does the waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import backoff

DEFAULT_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to retry, which answers deserve it, and the longest wait."""

    max_retries: int = 5
    max_backoff_seconds: float = 60.0
    statuses: frozenset[int] = frozenset(DEFAULT_RETRY_STATUSES)

    def waits(self) -> Iterator[float]:
        """Exponential waits with full jitter (backoff's own generators), capped."""
        values = backoff.expo(factor=0.5, max_value=self.max_backoff_seconds)
        next(values)  # the generator's priming value (None or 0, by version), not a wait
        for value in values:
            yield backoff.full_jitter(value)

    def wait_for(self, computed: float, retry_after: str | None) -> float:
        """The wait before the next attempt: at least Retry-After, at most the cap."""
        asked = parse_retry_after(retry_after) if retry_after else None
        wait = computed if asked is None else max(computed, asked)
        return min(wait, self.max_backoff_seconds)


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
