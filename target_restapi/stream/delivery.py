"""Delivery of one stream's requests: send, record the answer, count, acknowledge.

Every request's records are counted exactly once (delivered, failed, interrupted or not
sent) and acknowledged to the STATE tracker only once their outcome is recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

from target_restapi.delivery.answers import Verdict
from target_restapi.delivery.dispatch import Dispatcher
from target_restapi.delivery.dry_run import DryRunTransport
from target_restapi.delivery.item_failures import (
    ItemFailure,
    error_details,
    item_failures,
    record_results,
    stopping_error,
)
from target_restapi.delivery.pacing import AdaptiveLimit
from target_restapi.delivery.transport import Request, Transport
from target_restapi.errors import DeliveryError, RecordError, Stopped, TargetError, Unexpected
from target_restapi.output.in_order import InOrder
from target_restapi.output.progress import Tally
from target_restapi.output.redact import redact_url
from target_restapi.services import Services
from target_restapi.settings.streams import StreamSettings
from target_restapi.stream.pending import Pending


class StreamDelivery:
    """Hands one stream's finished requests to the run's threads and records their outcome."""

    def __init__(
        self,
        services: Services,
        settings: StreamSettings,
        stream: str,
        logger: logging.Logger,
        *,
        keyed: bool,
    ) -> None:
        self.settings = settings
        self.stream = stream
        # Every record's key properties are kept when the answer speaks per record.
        self.all_keys = keyed and settings.answers.per_record
        self._redactor = services.redactor
        self.tally: Tally = services.tally_for(stream)
        self._logger = logger
        self._tracker = services.tracker
        self._stop = services.stop
        self._transport: Transport | DryRunTransport
        credentials = services.credentials
        auth = credentials.auth(
            settings.auth,
            verify=settings.verify,
            timeout=settings.timeout_seconds,
            offline=services.dry_run,
        )
        rules = settings.answers
        if services.dry_run:
            self._transport = DryRunTransport(stream, logger, services.redactor, auth, rules=rules)
        else:
            self._transport = Transport(
                auth=auth,
                timeout_seconds=settings.timeout_seconds,
                sleep_seconds=settings.sleep_seconds,
                retry=settings.retry,
                verify=settings.verify,
                stop=services.stop,
                redactor=services.redactor,
                connections=services.connections,
                cert=credentials.cert(settings.auth),
                rate=services.rate_limits.of(stream),
                in_flight=AdaptiveLimit.of(settings.max_concurrency, f"stream '{stream}'"),
                rules=rules,
            )
        self.errors = None
        if settings.error_file_path and not settings.fail_on_error:
            self.errors = services.files.error_file(settings.error_file_path)
        self.responses = None
        if settings.response_file_path and not services.dry_run:
            self.responses = services.files.response_file(stream, settings)
        # Per-record lines follow the input even when requests overtake each other.
        self._in_order = InOrder() if self.responses and settings.answers.fields else None
        self._queued: dict[int, Pending] = {}  # handed to the dispatcher, not yet begun
        self._tally_lock = threading.Lock()
        self._dispatcher = Dispatcher(settings.max_concurrency, stream, services.workers)
        self._content_type_set = any(h.lower() == "content-type" for h in settings.headers)

    @property
    def queued_records(self) -> int:
        """Records of requests handed over but not yet begun."""
        return sum(pending.body.count for pending in self._queued.values())

    def send(self, pending: Pending) -> None:
        """Finish one request's body and hand it to the dispatcher."""
        try:
            request = pending.request(self.settings, content_type_set=self._content_type_set)
        except Exception as exc:
            self.count("not_sent", pending.body.count)
            raise self.unexpected(exc, pending.url)  # noqa: B904 - the cause stays as context
        # Queued until a worker begins it: close() counts it as not sent if none does.
        self._queued[pending.first_seq] = pending
        if self._in_order is not None:
            self._in_order.sent(pending.first_seq)
        # Keyed by URL across streams: no two streams' updates of a thing overlap.
        self._dispatcher.submit(pending.url, lambda: self._deliver(pending, request))

    def wait(self) -> None:
        """Until every request handed over has an answer."""
        self._dispatcher.wait()

    def close(self) -> int:
        """Let requests in flight end, release connections; the records never begun."""
        self._dispatcher.close()
        self._transport.close()
        unsent = self.queued_records
        if self._in_order is not None:
            self._in_order.flush()
        for pending in self._queued.values():
            pending.release()
        self._queued.clear()
        return unsent

    def _deliver(self, pending: Pending, request: Request) -> None:
        """Send one request (maybe on a worker thread) and acknowledge its records.

        Its records are counted once, whatever happens: an error nobody planned for
        counts them as failed and ends the run without acknowledging them.
        """
        try:
            self._deliver_once(pending, request)
        finally:
            if self._in_order is not None:
                self._in_order.ended(pending.first_seq)  # no line: interrupted, or a fault
            pending.release()

    def _deliver_once(self, pending: Pending, request: Request) -> None:
        count = pending.body.count
        del self._queued[pending.first_seq]
        if self._stop.is_set():
            self.count("interrupted", count)
            return
        self.count("requests", 1)
        outcome = {"failed": count}
        stop = None  # failed items with fail_on_error: raised once their records are counted
        try:
            outcome, stop = self._attempt(pending, request)
        except Stopped:
            outcome = {"interrupted": count}
            raise
        except Exception as exc:
            raise self.unexpected(exc, request.url)  # noqa: B904 - the cause stays as context
        finally:
            for what, n in outcome.items():
                self.count(what, n)
        if stop is not None:
            raise stop
        self._tracker.close(pending.first_seq)

    def _attempt(
        self, pending: Pending, request: Request
    ) -> tuple[dict[str, int], DeliveryError | None]:
        """Send and record the answer; say how many records became what.

        Delivered, failed (recorded, the run goes on), or not sent (a dry run); with
        failed items and fail_on_error, also the error that stops the run.
        """
        count = pending.body.count
        try:
            response, attempts, verdict = self._transport.send(request)
        except DeliveryError as exc:
            self.count("retries", exc.attempts - 1)
            self._save_response(pending, request, exc.response, exc.attempts, str(exc))
            failure = {
                "error": str(exc),
                "method": request.method,
                "url": redact_url(request.url),
                "status": exc.status,
                "answer": exc.answer,
                "attempts": exc.attempts,
            }
            records = pending.kept_lines()
            error = DeliveryError(f"stream '{self.stream}': {exc}", status=exc.status)
            self.failed(error, failure, records)
            return {"failed": count}, None
        self.count("retries", attempts - 1)
        if response is None:  # a dry run
            return {"not_sent": count}, None
        failures = item_failures(self.settings.answers, verdict, count, self._redactor)
        self._save_response(pending, request, response, attempts, None, verdict, failures)
        if not failures:
            return {"delivered": count}, None
        outcome = {"delivered": count - len(failures), "failed": len(failures)}
        where = (
            f"{request.method} {redact_url(request.url)} answered "
            f"{response.status_code} {response.reason}"
        )
        if self.settings.fail_on_error:
            keys = pending.keys if self.all_keys else []
            status = response.status_code
            stop = stopping_error(self.stream, where, status, failures, keys, self._redactor)
            return outcome, stop
        records = pending.kept_lines()
        url = redact_url(request.url)
        for item in failures:
            failure = error_details(
                where, request.method, url, response.status_code, attempts, item
            )
            error = DeliveryError(f"stream '{self.stream}': {failure['error']}")
            self.failed(error, failure, records[item.index : item.index + 1])
        return outcome, None

    def _save_response(
        self,
        pending: Pending,
        request: Request,
        response: Any,
        attempts: int,
        error: str | None,
        verdict: Verdict | None = None,
        failures: Sequence[ItemFailure] = (),
    ) -> None:
        """Write the request's entry (or its records') before its STATE can be released."""
        if self.responses is None:
            return
        count = pending.body.count
        if self.settings.answers.fields:
            status = None if response is None else response.status_code
            record_keys = pending.keys if self.all_keys else []
            results = record_results(count, record_keys, error, verdict, failures)
            write = partial(self.responses.write_records, self.stream, status, results)
            assert self._in_order is not None  # made whenever responses pick fields
            self._in_order.ended(pending.first_seq, write)
            return
        keys: dict[str, Any] = {"records": count}
        if pending.keys and (self.settings.request_mode == "single" or pending.delete):
            keys["keys"] = pending.keys[0]
        elif pending.keys:
            keys["first_keys"], keys["last_keys"] = pending.keys[0], pending.keys[-1]
        self.responses.write(
            stream=self.stream,
            method=request.method,
            url=request.url,
            response=response,
            attempts=attempts,
            error=error,
            keys=keys,
        )

    def count(self, what: str, n: int) -> None:
        """Add `n` to one of the stream's counts (from any thread)."""
        if not n:  # a request's retries, mostly
            return
        with self._tally_lock:
            setattr(self.tally, what, getattr(self.tally, what) + n)

    def failed(self, error: RecordError | DeliveryError, failure: dict, records: Any) -> None:
        """Stop the run, or (fail_on_error false) record the failure and go on."""
        if self.settings.fail_on_error:
            raise error
        if self.errors is not None:
            self.errors.write({"stream": self.stream, **failure}, records)
        else:
            where = f"input line {failure['line']}: " if "line" in failure else ""
            self._logger.error("%s%s (fail_on_error is false: the run goes on)", where, error)

    def unexpected(self, exc: BaseException, url: str) -> BaseException:
        """An error nobody planned for, as one line naming the stream and the request.

        Errors the user can act on, a stop, and interpreter exits pass as they are.
        """
        if isinstance(exc, TargetError | Stopped) or not isinstance(exc, Exception):
            return exc
        return Unexpected(
            f"stream '{self.stream}': {self.settings.method} {redact_url(url)}: "
            f"unexpected {type(exc).__name__}: {exc}; nothing past this record was "
            "acknowledged: rerun from the last STATE, and report this error if it persists"
        )
