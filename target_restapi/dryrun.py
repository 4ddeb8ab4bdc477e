"""Dry run: shape every request as usual, send none, show the first few of each stream.

The quickest way to check a config: method, URL, headers (secrets masked) and body of
the first requests are logged as they would be sent, auth and signature included, then a
count of what would have been sent.
"""

from __future__ import annotations

import gzip
import io
import logging

import requests
from requests.auth import AuthBase

from target_restapi.redact import Redactor, redact_headers, redact_url
from target_restapi.transport import Request

SHOWN = 10
BODY_CHARS = 4000


class DryRunTransport:
    """Stands in for Transport: logs the first requests, counts all, sends nothing."""

    def __init__(
        self, stream: str, logger: logging.Logger, redactor: Redactor, auth: AuthBase
    ) -> None:
        self._stream = stream
        self._logger = logger
        self._redact = redactor.text
        self._auth = auth
        self.requests = 0

    def send(self, request: Request) -> tuple[None, int]:
        """Log the request, as prepared for sending, if it is among the first few."""
        self.requests += 1
        if self.requests <= SHOWN:
            prepared = requests.Request(
                request.method, request.url, request.headers, data=request.body, auth=self._auth
            ).prepare()
            gzipped = prepared.headers.get("Content-Encoding") == "gzip"
            self._logger.info(
                "dry run: stream '%s' request %d: %s %s headers=%s body=%s",
                self._stream,
                self.requests,
                prepared.method,
                self._redact(redact_url(prepared.url or "")),
                self._redact(str(redact_headers(dict(prepared.headers)))),
                self._redact(_text(request.body, gzipped=gzipped)),
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


def _text(body: object, *, gzipped: bool) -> str:
    """The start of a body (bytes or a spooled file) as text; gzip is shown decompressed."""
    if body is None:
        return ""
    source = body if hasattr(body, "read") else io.BytesIO(body)  # type: ignore[arg-type]
    source.seek(0)
    data = (gzip.GzipFile(fileobj=source) if gzipped else source).read(BODY_CHARS + 1)
    source.seek(0)
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + "…"
