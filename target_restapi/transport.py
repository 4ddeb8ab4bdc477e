"""HTTP delivery: one keep-alive session, pacing, retries, and errors that name the request.

Knows nothing of Singer: it takes finished requests and gives answers or DeliveryError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from target_restapi.errors import DeliveryError, Stopped
from target_restapi.pacing import AdaptiveLimit, RateLimit
from target_restapi.redact import Redactor, redact_url
from target_restapi.retry import RetryPolicy
from target_restapi.url_safety import DotSafeSession

if TYPE_CHECKING:
    from target_restapi.tunnel import Tunnels

EXCERPT_CHARS = 300
# A connection refused, dropped (also mid-answer) or too slow: worth another attempt.
RETRYABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
FOLLOWED_REDIRECTS = (307, 308)


class UnsafeRedirect(requests.RequestException):
    """A 301/302/303 would turn the request into a GET without its body: refuse it."""


def _refuse_method_changing_redirects(response: requests.Response, **_: object) -> None:
    """Response hook: stop before requests re-sends a POST/PUT/... as a body-less GET."""
    if (
        response.is_redirect
        and response.status_code not in FOLLOWED_REDIRECTS
        and response.request.method != "GET"
    ):
        raise UnsafeRedirect(
            f"was redirected ({response.status_code}) to {response.headers.get('Location')}; "
            "only 307 and 308 keep the method and body, so put the new address in the URL"
        )


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


def answer_text(response: requests.Response, limit: int = 4 * EXCERPT_CHARS) -> str:
    """The start of an answer's body as text, without requests' slow charset guessing."""
    return response.content[:limit].decode(response.encoding or "utf-8", errors="replace")


class Transport:
    """Sends requests over one session, retrying as the policy says, pacing between them."""

    def __init__(
        self,
        *,
        auth: AuthBase | None,
        timeout_seconds: float,
        sleep_seconds: float,
        retry: RetryPolicy,
        verify: bool | str,
        stop: threading.Event,
        redactor: Redactor,
        tunnels: Tunnels | None = None,
        pool_size: int = 1,
        cert: str | tuple[str, str] | None = None,
        rate: RateLimit | None = None,
        in_flight: AdaptiveLimit | None = None,
    ) -> None:
        self._session = DotSafeSession()  # a `..` from a record must not walk the path
        pool_maxsize = max(pool_size, 10)
        if tunnels is not None:
            tunnels.mount(self._session, pool_maxsize)
        else:
            adapter = HTTPAdapter(pool_maxsize=pool_maxsize)
            self._session.mount("http://", adapter)
            self._session.mount("https://", adapter)
        self._session.auth = auth
        self._session.cert = cert
        self._renew = getattr(auth, "renew", None)  # a stale token can be replaced on a 401
        self._verify = verify  # given on each request: REQUESTS_CA_BUNDLE must not win
        self._session.hooks["response"].append(_refuse_method_changing_redirects)
        self._timeout = timeout_seconds
        self._sleep = sleep_seconds
        self._retry = retry
        self._stop = stop
        self._redact = redactor.text
        self._last_done: float | None = None
        self._pace_lock = threading.Lock()
        self._rate = rate
        self._in_flight = in_flight

    def send(self, request: Request) -> tuple[requests.Response, int]:
        """Send `request` with retries; return the answer and the number of attempts.

        Raises DeliveryError for a non-2xx answer or a connection that failed after the
        retries, and Stopped when a stop was asked for while waiting to retry.
        """
        where = f"{request.method} {redact_url(request.url)}"
        waits = self._retry.waits()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            self._pace()
            retry_after = response = None
            try:
                response = self._attempt(request)
            except requests.exceptions.SSLError as exc:  # a bad certificate stays bad
                status, reason, answer = None, f"could not be sent: {exc}", ""
                retryable = False
            except RETRYABLE_ERRORS as exc:
                status, reason, answer = None, f"could not be sent: {exc}", ""
                retryable = True
            except UnsafeRedirect as exc:
                status, reason, answer = None, str(exc), ""
                retryable = False
            except requests.RequestException as exc:
                status, reason, answer = None, f"could not be sent: {exc}", ""
                retryable = False
            else:
                if 200 <= response.status_code < 300:
                    return response, attempt
                status = response.status_code
                if status == 401 and self._renew is not None and not renewed:
                    renewed = self._renew(response)
                    if renewed:
                        continue  # with a new token, at once: not counted as a retry
                answer = excerpt(answer_text(response))
                reason = f"answered {status} {response.reason}: {answer}"
                retryable = status in self._retry.statuses
                retry_after = response.headers.get("Retry-After")
            if not retryable or attempt > self._retry.max_retries + renewed:
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise DeliveryError(
                    self._redact(f"{where} {reason}{tries}"),
                    status=status,
                    attempts=attempt,
                    answer=self._redact(answer),
                    response=response,
                )
            if self._stop.wait(self._retry.wait_for(next(waits), retry_after)):
                raise Stopped

    def close(self) -> None:
        """Release the session's connections."""
        self._session.close()

    def _attempt(self, request: Request) -> requests.Response:
        with self._in_flight or nullcontext():
            if self._rate is not None:
                self._rate.wait(self._stop)
            if hasattr(request.body, "seek"):
                request.body.seek(0)  # a retried spooled body starts again from its beginning
            try:
                response = self._session.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    data=request.body,
                    timeout=self._timeout,
                    verify=self._verify,
                )
            finally:
                self._last_done = time.monotonic()
        if self._in_flight is not None:
            self._in_flight.answered(response.status_code)
        return response

    def _pace(self) -> None:
        if not self._sleep:
            return
        with self._pace_lock:  # concurrent senders keep the pause between them too
            if self._last_done is not None:
                wait = self._last_done + self._sleep - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    raise Stopped
            self._last_done = time.monotonic()
