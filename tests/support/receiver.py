"""A receiver that misbehaves on plan and keeps a ledger of the records it accepted.

Built on tests/support/loopback.py's `Server`, started once and reused: `begin(faults)` starts a
new run under a fresh URL prefix. Requests are answered in arrival order by the run's
faults (a status after a delay, or a dropped connection), then with 200. A record is
received only when its request was answered 2xx; the body is parsed for record ids
whatever its shape (one record, an array, an object holding the array; gzip or not).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter, deque
from typing import Any

from support.loopback import Answer, Got, Server
from support.singer_cases import Fault

RETRY_AFTER = "1"  # more than max_backoff_seconds: the cap must win


class FaultyReceiver:
    """Answers by plan; `accepted` maps each stream to the ids of every accepted record.

    `attempts` counts every request of the run per stream, answered or dropped. A
    request's stream is the first part of its path after the run's prefix.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run = 0
        self._faults: deque[Fault] = deque()
        self.accepted: dict[str, list[int]] = {}
        self.attempts: Counter[str] = Counter()
        self.strays: list[str] = []  # requests to another run's prefix, or unreadable bodies
        self.server = Server(self._answer, nodelay=True)

    def begin(self, faults: list[Fault]) -> str:
        """Start a new run with these faults; its base URL (streams post to <url>/<stream>)."""
        with self._lock:
            self._run += 1
            self._faults = deque(faults)
            self.accepted = {}
            self.attempts = Counter()
            self.strays = []
            self.server.requests.clear()
        return self.server.url(f"/run{self._run}")

    def close(self) -> None:
        self.server.close()

    def _answer(self, got: Got) -> Answer | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else Fault(200)
            prefix = f"/run{self._run}/"
            stream = got.path.removeprefix(prefix).split("/")[0]
            self.attempts[stream] += 1
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is None:
            return None
        headers = {"Retry-After": RETRY_AFTER} if fault.status in (429, 503) else {}
        text = "" if fault.status == 204 else "ok"
        if 200 <= fault.status < 300:
            try:
                ids = record_ids(_decoded(got))
            except ValueError as exc:
                ids, stream = [], f"{got.path}: {exc}"
            with self._lock:
                if not got.path.startswith(prefix) or not ids:
                    self.strays.append(stream)
                else:
                    self.accepted.setdefault(stream, []).extend(ids)
        return fault.status, headers, text


def _decoded(got: Got) -> Any:
    body = got.body
    if got.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)


def record_ids(body: Any) -> list[int]:
    """The `id` of every record in a JSON body, in order."""
    if isinstance(body, list):
        return [ident for item in body for ident in record_ids(item)]
    if isinstance(body, dict) and "id" in body:
        return [body["id"]]
    if isinstance(body, dict) and len(body) == 1:
        return record_ids(next(iter(body.values())))
    raise ValueError(f"no records in {body!r:.200}")
