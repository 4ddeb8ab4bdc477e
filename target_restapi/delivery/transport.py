"""HTTP delivery: keep-alive connections shared by the run, pacing, retries, named errors.

Knows nothing of Singer: it takes finished requests and gives answers or DeliveryError.
An answer is read up to KEPT_BYTES only (the most anything uses): memory stays flat
whatever its size. `timeout_seconds` is a deadline for the whole request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any

import requests
from requests.auth import AuthBase
from urllib3.util import Timeout

from target_restapi.delivery.answers import ANSWER_BYTES, AnswerRules, Verdict
from target_restapi.delivery.deadline import STOP_GRACE_SECONDS, Watch, Watchdog, WatchedAdapter
from target_restapi.delivery.pacing import AdaptiveLimit, Pace
from target_restapi.delivery.retry import RetryPolicy
from target_restapi.delivery.session import LeanSession
from target_restapi.errors import DeliveryError, Stopped
from target_restapi.output.redact import Redactor, redact_url

if TYPE_CHECKING:
    from target_restapi.tunnel.ssh import Tunnels

EXCERPT_CHARS = 300
KEPT_BYTES = 72 * 1024  # response files keep 64 KiB of an answer; the rest is not read
# A connection refused, dropped (also mid-answer) or too slow: worth another attempt.
RETRYABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
FOLLOWED_REDIRECTS = (307, 308)


class _CutShort(requests.Timeout):
    """The request's deadline passed: its sockets were shut down. Worth another attempt."""


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
    records: int = 1  # how many records it carries: item_results must list as many
    judged: bool = True  # False: its 2xx status alone decides (a delete's answer has no items)


def keep_start(response: requests.Response, *, limit: int = KEPT_BYTES, **_: object) -> None:
    """Response hook: read at most `limit` bytes of the body; drop the connection if more came.

    Closing instead of draining: a huge or endless answer costs neither memory nor time.
    `response.content` is then the kept start.
    """
    kept = bytearray()
    for chunk in response.iter_content(16 * 1024):
        kept += chunk
        if len(kept) >= limit:
            response.raw.close()  # closes the connection: the rest is never read
            break
    response._content = bytes(kept[:limit])  # what .content returns
    response._content_consumed = True  # type: ignore[attr-defined]  # private to requests, unstubbed


def excerpt(text: str, redactor: Redactor, *, cut: bool = False, limit: int = EXCERPT_CHARS) -> str:
    """The start of an answer on one line, for error messages: masked first, then cut.

    `cut`: `text` is itself only the start of the answer.
    """
    flat = " ".join(redactor.text(text).split())  # masked before: a secret may hold spaces
    return redactor.clip(flat, limit, cut=cut)  # ... and after: one may look like one


def answer_text(response: requests.Response, limit: int = 4 * EXCERPT_CHARS) -> tuple[str, bool]:
    """The start of an answer's body as text (no slow charset guessing), and if it was cut."""
    content = response.content
    text = content[:limit].decode(response.encoding or "utf-8", errors="replace")
    return text, len(content) > limit


class Connections:
    """The run's keep-alive connections and request deadlines, shared by every stream.

    One session (its pools keyed by scheme, host, port, TLS verification and client
    certificate: what makes a connection interchangeable) and one Watchdog thread, so
    open sockets and threads grow with the hosts and requests in flight, not the streams.
    """

    def __init__(
        self, stop: threading.Event, *, tunnels: Tunnels | None = None, pool_size: int = 1
    ) -> None:
        self.session = LeanSession()  # a `..` from a record must not walk the path
        pool_maxsize = max(pool_size, 10)
        if tunnels is not None:
            tunnels.mount(self.session, pool_maxsize)
        else:
            adapter = WatchedAdapter(pool_maxsize=pool_maxsize)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self.session.hooks["response"] += [_refuse_method_changing_redirects, keep_start]
        self.watchdog = Watchdog(stop, STOP_GRACE_SECONDS)

    def close(self) -> None:
        """Release the connections and end the Watchdog thread."""
        self.watchdog.close()
        self.session.close()


class Transport:
    """Sends a stream's requests with its auth, retrying as the policy says, pacing them.

    Over the run's `connections`; without them, over connections of its own.
    """

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
        connections: Connections | None = None,
        cert: str | tuple[str, str] | None = None,
        rate: Pace | None = None,
        in_flight: AdaptiveLimit | None = None,
        rules: AnswerRules | None = None,
    ) -> None:
        self._own = connections is None
        self._connections = connections or Connections(stop)
        self._session = self._connections.session
        self._watchdog = self._connections.watchdog
        self._auth = auth  # given on each request: the session is shared
        self._cert = cert
        self._renew = getattr(auth, "renew", None)  # a stale token can be replaced on a 401
        self._verify = verify  # given on each request: REQUESTS_CA_BUNDLE must not win
        self._timeout = timeout_seconds
        # What requests makes of the number for each request, made once.
        self._timeouts = Timeout(connect=timeout_seconds, read=timeout_seconds)
        self._sleep = sleep_seconds
        self._retry = retry
        self._stop = stop
        self._redactor = redactor
        self._redact = redactor.text
        self._last_done: float | None = None
        self._pace_lock = threading.Lock()
        self._rate = rate
        self._in_flight = in_flight
        self._rules = rules if rules is not None and rules.active else None
        # None: the session's hooks, which keep answers up to KEPT_BYTES
        self._hooks: dict[str, list[Callable[..., Any]]] | None = None
        if self._rules is not None:  # a condition needs the whole JSON body: read more
            keep = partial(keep_start, limit=ANSWER_BYTES)
            self._hooks = {"response": [_refuse_method_changing_redirects, keep]}

    def send(self, request: Request) -> tuple[requests.Response, int, Verdict | None]:
        """Send `request` with retries; return the answer, the attempts and its verdict.

        Raises DeliveryError for a non-2xx answer, a 2xx answer the answer rules fail, or
        a connection that failed after the retries, and Stopped when a stop was asked for
        while waiting to retry. The verdict is None without answer rules.
        """
        waits = self._retry.waits()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            self._pace()
            retry_after = response = None
            try:
                response = self._attempt(request)
            except _CutShort as exc:
                status, reason, answer = None, str(exc), ""
                retryable = True
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
                status = response.status_code
                verdict = self._judge(response, request) if 200 <= status < 300 else None
                failure = None if verdict is None else verdict.failure
                if 200 <= status < 300 and failure is None:
                    return response, attempt, verdict
                if status == 401 and self._renew is not None and not renewed:
                    renewed = self._renew(response)
                    if renewed:
                        continue  # with a new token, at once: not counted as a retry
                text, cut = answer_text(response)
                answer = excerpt(text, self._redactor, cut=cut)
                reason = f"answered {status} {response.reason}: {answer}"
                retryable = status in self._retry.statuses
                if failure is not None:  # a 2xx the answer rules refuse
                    reason = f"answered {status} {response.reason}, but {failure}: {answer}"
                    # Only answer rules give a 2xx a failure, so they are set here.
                    retryable = self._rules.retry  # type: ignore[union-attr]
                retry_after = response.headers.get("Retry-After")
            if not retryable or attempt > self._retry.max_retries + renewed:
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                where = f"{request.method} {redact_url(request.url)}"
                raise DeliveryError(
                    self._redact(f"{where} {reason}{tries}"),
                    status=status,
                    attempts=attempt,
                    answer=self._redact(answer),
                    response=response,
                )
            if self._stop.wait(self._retry.wait_for(next(waits), retry_after)):
                raise Stopped

    def _judge(self, response: requests.Response, request: Request) -> Verdict | None:
        """The answer rules' verdict on a 2xx answer; None without rules."""
        if self._rules is None or not request.judged:
            return None
        content = response.content
        return self._rules.judge(content, len(content) < ANSWER_BYTES, request.records)

    def close(self) -> None:
        """Release the connections if they are this transport's own."""
        if self._own:
            self._connections.close()

    def _attempt(self, request: Request) -> requests.Response:
        with self._in_flight or nullcontext():
            if self._rate is not None:
                self._rate.wait(self._stop)
            if request.body is not None and not isinstance(request.body, bytes):
                request.body.seek(0)  # a retried spooled body starts again from its beginning
            try:
                with self._watchdog.watch(self._timeout) as watch:
                    try:
                        response = self._session.request(
                            request.method,
                            request.url,
                            headers=request.headers,
                            data=request.body,
                            # requests takes urllib3's Timeout as is; its stubs do not say so.
                            timeout=self._timeouts,  # type: ignore[arg-type]
                            auth=self._auth,
                            cert=self._cert,
                            verify=self._verify,
                            stream=True,  # keep_start reads what is kept, no more
                            hooks=self._hooks,
                        )
                    except requests.RequestException:
                        self._cut_short(watch)
                        raise
                    self._cut_short(watch)  # the answer's end was lost, not just late
            finally:
                self._last_done = time.monotonic()
        if self._in_flight is not None:
            self._in_flight.answered(response.status_code)
        return response

    def _cut_short(self, watch: Watch) -> None:
        """Raise what ended a request the Watchdog cut: its deadline, or a stop."""
        if watch.expired == "stopped":
            raise Stopped
        if watch.expired == "timeout":
            raise _CutShort(
                f"could not be sent: timed out, no complete answer within timeout_seconds "
                f"({self._timeout:g} s)"
            )

    def _pace(self) -> None:
        if not self._sleep:
            return
        with self._pace_lock:  # concurrent senders keep the pause between them too
            if self._last_done is not None:
                wait = self._last_done + self._sleep - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    raise Stopped
            self._last_done = time.monotonic()
