"""HTTP delivery: one keep-alive session, pacing, and errors that name the request.

Knows nothing of Singer: it takes finished requests and gives answers or DeliveryError.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

import requests

from target_restapi.errors import DeliveryError
from target_restapi.redact import redact_text, redact_url

EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, ready to send."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | IO[bytes] | None


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of an answer on one line, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


class Transport:
    """Sends requests over one session, keeping at least `sleep_seconds` between them."""

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None,
        timeout_seconds: float,
        sleep_seconds: float,
    ) -> None:
        self._session = requests.Session()
        self._session.auth = auth
        self._timeout = timeout_seconds
        self._sleep = sleep_seconds
        self._secrets = [auth[1]] if auth else []
        self._last_done: float | None = None

    def send(self, request: Request) -> requests.Response:
        """Send `request`; raise DeliveryError for a non-2xx answer or a failed connection."""
        self._pace()
        where = f"{request.method} {redact_url(request.url)}"
        try:
            response = self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            reason = redact_text(str(exc), self._secrets)
            raise DeliveryError(f"{where} could not be sent: {reason}") from None
        finally:
            self._last_done = time.monotonic()
        if response.status_code >= 400:
            text = redact_text(excerpt(response.text), self._secrets)
            raise DeliveryError(
                f"{where} answered {response.status_code} {response.reason}: {text}",
                status=response.status_code,
            )
        return response

    def close(self) -> None:
        """Release the session's connections."""
        self._session.close()

    def _pace(self) -> None:
        if self._sleep and self._last_done is not None:
            wait = self._last_done + self._sleep - time.monotonic()
            if wait > 0:
                time.sleep(wait)
