"""Dry run: shape every request as usual, send none, show the first few of each stream.

The quickest way to check a config: method, URL, headers (secrets masked) and body of
the first requests are logged, then a count of what would have been sent.
"""

from __future__ import annotations

import logging

from target_restapi.redact import Redactor, redact_headers, redact_url
from target_restapi.transport import Request

SHOWN = 10
BODY_CHARS = 4000


class DryRunTransport:
    """Stands in for Transport: logs the first requests, counts all, sends nothing."""

    def __init__(self, stream: str, logger: logging.Logger, redactor: Redactor) -> None:
        self._stream = stream
        self._logger = logger
        self._redact = redactor.text
        self.requests = 0

    def send(self, request: Request) -> tuple[None, int]:
        """Log the request if it is among the first few; never send it."""
        self.requests += 1
        if self.requests <= SHOWN:
            self._logger.info(
                "dry run: stream '%s' request %d: %s %s headers=%s body=%s",
                self._stream,
                self.requests,
                request.method,
                redact_url(request.url),
                redact_headers(dict(request.headers)),
                self._redact(_text(request.body)),
            )
        return None, 1

    def close(self) -> None:
        """Say how much would have been sent."""
        self._logger.info(
            "dry run: stream '%s': %d requests would have been sent (first %d shown)",
            self._stream,
            self.requests,
            min(self.requests, SHOWN),
        )


def _text(body: object) -> str:
    """The start of a body (bytes or a spooled file) as text."""
    if body is None:
        return ""
    if hasattr(body, "read"):
        data = body.read(BODY_CHARS + 1)
        body.seek(0)
    else:
        data = body[: BODY_CHARS + 1]
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + "…"
