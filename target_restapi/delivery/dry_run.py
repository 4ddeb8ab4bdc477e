"""Dry run: shape every request as usual, send none, show the first few of each stream.

The quickest way to check a config: method, URL, headers (secrets masked) and body of
the first requests are logged as they would be sent, auth and signature included, then a
count of what would have been sent.
"""

from __future__ import annotations

import gzip
import io
import logging
from typing import IO

import requests
from requests.auth import AuthBase

from target_restapi.delivery.answers import AnswerRules
from target_restapi.delivery.transport import Request
from target_restapi.output.redact import Redactor, redact_headers, redact_url

SHOWN = 10
BODY_CHARS = 4000


class DryRunTransport:
    """Stands in for Transport: logs the first requests, counts all, sends nothing."""

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        redactor: Redactor,
        auth: AuthBase,
        rules: AnswerRules | None = None,
    ) -> None:
        """`rules`: the answer settings; said once, since no answer will test them."""
        if rules is not None and rules.active:
            logger.info("dry run: stream '%s' would judge answers by %s", stream, rules.shown())
        self._stream = stream
        self._logger = logger
        self._redactor = redactor
        self._redact = redactor.text
        self._auth = auth
        self.requests = 0

    def send(self, request: Request) -> tuple[None, int, None]:
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
                self._body(request.body, gzipped=gzipped),
            )
        return None, 1, None

    def _body(self, body: bytes | IO[bytes] | None, *, gzipped: bool) -> str:
        """The body's start, masked first, then cut (a secret cut in half would show)."""
        text, more = _text(body, gzipped=gzipped)
        return self._redactor.clip(text, BODY_CHARS, cut=more)

    def close(self) -> None:
        """Say how much would have been sent."""
        self._logger.info(
            "dry run: stream '%s': %d requests would have been sent (first %d shown)",
            self._stream,
            self.requests,
            min(self.requests, SHOWN),
        )


def _text(body: bytes | IO[bytes] | None, *, gzipped: bool) -> tuple[str, bool]:
    """The start of a body (bytes or a spooled file) as text, and whether the body goes on.

    Twice what is shown is read: masking may shorten it. A gzip body is shown decompressed.
    """
    if body is None:
        return "", False
    source = io.BytesIO(body) if isinstance(body, bytes) else body
    source.seek(0)
    data = (gzip.GzipFile(fileobj=source) if gzipped else source).read(2 * BODY_CHARS + 1)
    source.seek(0)
    return data.decode("utf-8", errors="replace"), len(data) > 2 * BODY_CHARS
