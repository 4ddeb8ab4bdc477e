"""One sink per stream: shape each record into a request as it arrives, and send it.

A record is encoded once on arrival (its raw JSON bytes when it passes through as is).
`single` sends at once; `batch` and `one` collect encoded bytes per rendered URL and
headers, in input order. Every delivery acknowledges its records to the STATE tracker.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import Sink

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
from target_restapi.output.progress import Tally
from target_restapi.output.redact import redact_url
from target_restapi.settings.streams import StreamSettings, resolve
from target_restapi.shaping.bodies import (
    Body,
    MultipartBody,
    add_boundary,
    encode_json,
    gzip_payload,
)
from target_restapi.shaping.shapers import make_shaper
from target_restapi.singer_input.validation import RecordValidator, decode_record
from target_restapi.templates import check_header_value, render_url

if TYPE_CHECKING:
    from target_restapi.target import TargetRestApi


@dataclass(slots=True)
class Pending:
    """What one request will carry: its first record's sequence, URL, headers and body.

    `records` keeps the records as received only when failures go to an error file;
    `digest` grows with the body only when an idempotency key is asked for; `keys` holds
    the key properties of the first and last record only when responses are saved.
    """

    first_seq: int
    url: str
    headers: dict[str, str]
    body: Body | MultipartBody
    records: Body | None
    digest: Any
    opened: float  # monotonic time of its first record (batch mode only; 0 otherwise)
    keys: list[dict[str, Any]] = field(default_factory=list)


class RestSink(Sink):
    """Delivers one stream's records to its endpoint."""

    def __init__(
        self,
        target: TargetRestApi,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: list[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.settings: StreamSettings = resolve(target.config, stream_name)
        self.settings.check_against_schema(schema)
        self.tracker = target.tracker
        self._reader = target.reader
        self.tally: Tally = target.tally_for(stream_name)
        self._transport: Transport | DryRunTransport
        credentials = target.credentials
        auth = credentials.auth(
            self.settings.auth,
            verify=self.settings.verify,
            timeout=self.settings.timeout_seconds,
            offline=target.dry_run,
        )
        rules = self.settings.answers
        if target.dry_run:
            self._transport = DryRunTransport(
                stream_name, self.logger, target.redactor, auth, rules=rules
            )
        else:
            self._transport = Transport(
                auth=auth,
                timeout_seconds=self.settings.timeout_seconds,
                sleep_seconds=self.settings.sleep_seconds,
                retry=self.settings.retry,
                verify=self.settings.verify,
                stop=target.stop,
                redactor=target.redactor,
                connections=target.connections,
                cert=credentials.cert(self.settings.auth),
                rate=target.rate_limit(stream_name),
                in_flight=AdaptiveLimit.of(
                    self.settings.max_concurrency, f"stream '{stream_name}'"
                ),
                rules=rules,
            )
        self._shaper = make_shaper(
            self.settings.shape,
            list(schema.get("properties") or {}),
            single=self.settings.request_mode == "single",
        )
        self._errors = None
        if self.settings.error_file_path and not self.settings.fail_on_error:
            self._errors = target.error_file(self.settings.error_file_path)
        self._responses = None
        if self.settings.response_file_path and not target.dry_run:
            self._responses = target.response_file(stream_name, self.settings)
        # Oldest group first; an OrderedDict pops its first entry in O(1), a dict does not.
        self._pending: OrderedDict[Any, Pending] = OrderedDict()
        self._queued: dict[int, Pending] = {}  # handed to the dispatcher, not yet begun
        self._stop = target.stop
        self._tally_lock = threading.Lock()
        self._dispatcher = Dispatcher(self.settings.max_concurrency, stream_name, target.workers)
        self._static_headers = self._headers({}) if self._headers_are_static() else None
        self._fixed_route = None
        if not self.settings.url.fields and self._static_headers is not None:
            url = self.settings.url.text
            self._fixed_route = (url, url, self._static_headers)
        self._raw_items = self._shaper.raw_ok
        # Every record's keys when the answer speaks per record; else the first and last.
        per_record = rules.per_record
        self._keep_keys = bool(self.key_properties) and (self._responses is not None or per_record)
        self._all_keys = self._keep_keys and per_record
        self._redactor = target.redactor
        self._needs_record = not (
            self._raw_items
            and self._fixed_route
            and not self.settings.idempotency_key_header
            and not self._keep_keys
        )
        self._content_type_set = any(h.lower() == "content-type" for h in self.settings.headers)
        self._empty_body = self._shaper.new_body(spool=False)  # measures a record alone

    # SDK hooks

    def get_validator(self) -> RecordValidator | None:
        """A compiled validator: the SDK's jsonschema default is the slowest per-record step."""
        if not self.validate_schema:
            return None
        return RecordValidator(self.schema, self.stream_name, list(self.key_properties))

    @property
    def is_full(self) -> bool:
        """Never: this sink cuts its own requests, so the SDK must not drain it."""
        return False

    def _validate_and_parse(self, record: dict) -> dict:
        """Validate a mapped record; keep its date-time text as received.

        The SDK's version logs a traceback before raising and rewrites date-times.
        """
        if self._validator is not None:
            self._validator.validate(record)
        return record

    def process_record(self, record: dict, context: dict) -> None:
        """Records that came through stream maps: shape the transformed record."""
        self.add(record, None)

    def process_batch(self, context: dict) -> None:
        """The SDK asks for a drain: send what is pending."""
        self.flush()

    def clean_up(self) -> None:
        """Send what is pending, log the stream's summary, close connections."""
        self.finish()
        self.close()

    def close(self) -> None:
        """Let requests in flight end and release connections and files; send no more.

        Records still pending, or queued behind a failure, are counted as not sent.
        """
        self._dispatcher.close()
        self._transport.close()
        unsent = [*self._pending.values(), *self._queued.values()]
        self._pending.clear()
        self._queued.clear()
        self._count("not_sent", sum(pending.body.count for pending in unsent))

    @property
    def undelivered(self) -> int:
        """Records never sent (pending, queued, or counted so at close), or stopped mid-retry."""
        waiting = [*self._pending.values(), *self._queued.values()]
        return sum(p.body.count for p in waiting) + self.tally.interrupted + self.tally.not_sent

    # The record path

    def accept(self, raw: bytes) -> None:
        """A record straight from the input: validate its raw JSON, decode only if needed."""
        validator = self._validator
        record = None if validator is None else validator.check(raw)  # type: ignore[attr-defined]
        if record is None and (self._needs_record or validator is None):
            record = decode_record(raw)
            if validator is None:
                self._singer_validate_message(record)
        self.add(record, raw)

    def add(self, record: dict[str, Any] | None, raw: bytes | None) -> None:
        """Shape one record into a request, or into its group's pending batch."""
        self.tally.received += 1
        route = self._fixed_route or self._route(record, raw)
        if route is None:
            return
        key, url, headers = route
        seq = self.tracker.next_seq()
        mode = self.settings.request_mode
        pending = None if mode == "single" else self._pending.get(key)
        item = self._item(record, raw, pending, url)
        cap = self.settings.batch_max_bytes
        if cap is not None:
            body = None if pending is None else pending.body
            cut = body is not None and body.size + body.extra(item) > cap
            if cut:
                item = self._item(record, raw, None, url)  # it will start a new body
            if pending is None or cut:
                size = self._empty_body.size + self._empty_body.extra(item)
                if size > cap:  # the open batch, if any, stays open for the next records
                    self._too_large(size, cap, record, raw)
                    return
            if cut:
                del self._pending[key]
                self._send(pending)  # type: ignore[arg-type]
                pending = None
        if pending is None:
            if mode != "single" and len(self._pending) >= self.settings.max_open_batches:
                self._send(self._pending.popitem(last=False)[1])  # the oldest group
            # Later records of a group are covered by the unit its first record opens.
            self.tracker.open(seq)
            pending = self._new_pending(seq, url, headers, mode=mode)
            if mode != "single":
                self._pending[key] = pending
        body = pending.body
        body.add(item)
        if pending.records is not None:
            pending.records.add(raw if raw is not None else encode_json(record))
        if pending.digest is not None:
            keys = [record.get(name) for name in self.key_properties]
            pending.digest.update(encode_json([keys, item]))
        if self._keep_keys:
            keys = {name: record.get(name) for name in self.key_properties}
            if self._all_keys or not pending.keys:
                pending.keys.append(keys)
            else:
                pending.keys[1:] = [keys]
        if mode == "single":
            self._send(pending)
        elif mode == "batch" and body.count >= self.settings.batch_size:
            del self._pending[key]
            self._send(pending)

    def _item(self, record: Any, raw: bytes | None, pending: Pending | None, url: str) -> Any:
        """The record encoded for its place in the body: raw JSON when it goes as received."""
        if self._raw_items and raw is not None:
            return raw
        try:
            return self._shaper.item(record, raw, 0 if pending is None else pending.body.count)
        except Exception as exc:
            self._count("not_sent", 1)
            raise self._unexpected(exc, url)  # noqa: B904 - the cause stays as context

    def _too_large(self, size: int, cap: int, record: Any, raw: bytes | None) -> None:
        """A record whose request body alone would pass batch_max_bytes: a record error."""
        self._record_failed(
            f"the record alone makes a {size}-byte request body, over batch_max_bytes "
            f"({cap}); raise batch_max_bytes or shrink the record",
            record,
            raw,
        )

    def _record_failed(self, problem: str, record: Any, raw: bytes | None) -> None:
        """A record that cannot become a request: counted as failed, the input line named."""
        failure = {
            "error": problem,
            "line": self._reader.line_number,
            "method": self.settings.method,
            "url": redact_url(self.settings.url.text),
            "status": None,
            "answer": None,
            "attempts": 0,
        }
        self._count("failed", 1)
        self._failed(
            RecordError(f"stream '{self.stream_name}': {problem}"),
            failure,
            [raw if raw is not None else encode_json(record)],
        )

    def _route(self, record: dict[str, Any], raw: bytes | None) -> tuple | None:
        """(group key, URL, headers) of a record; None when they can't be rendered."""
        try:
            url = render_url(self.settings.url, record)
            headers = self._static_headers
            if headers is None:
                headers = self._headers(record)
        except RecordError as exc:
            self._record_failed(str(exc), record, raw)
            return None
        except Exception as exc:
            self._count("not_sent", 1)
            raise self._unexpected(exc, self.settings.url.text)  # noqa: B904 - kept as context
        return (url if self._static_headers is not None else (url, *headers.items())), url, headers

    def flush(self) -> None:
        """Send every pending batch, oldest group first."""
        while self._pending:
            self._send(self._pending.popitem(last=False)[1])

    def send_due(self, now: float) -> float | None:
        """Send the batches older than batch_max_age_seconds; say when the next is due.

        Groups are kept oldest first, so only the first ones are looked at.
        """
        if self.settings.request_mode != "batch":
            return None
        age = self.settings.batch_max_age_seconds
        while self._pending:
            key = next(iter(self._pending))
            due = self._pending[key].opened + age
            if due > now:
                return due
            self._send(self._pending.pop(key))
        return None

    def finish(self) -> None:
        """Send what is pending and wait until every request has an answer."""
        self.flush()
        self._dispatcher.wait()

    def _new_pending(self, seq: int, url: str, headers: dict[str, str], *, mode: str) -> Pending:
        spool = mode == "one"
        records = None
        if self._errors is not None:
            records = Body(content_type="", separator=b"\n", spool=spool)
        digest = None
        if self.settings.idempotency_key_header:
            digest = hashlib.sha256(encode_json([self.stream_name, self.settings.method, url]))
        opened = time.monotonic() if mode == "batch" else 0.0
        body = self._shaper.new_body(spool=spool)
        return Pending(seq, url, headers, body, records, digest, opened)

    def _send(self, pending: Pending) -> None:
        """Finish one request's body and hand it to the dispatcher."""
        body = pending.body
        method = self.settings.method
        try:
            payload = None if method == "GET" else body.payload()
            headers = dict(pending.headers)
            if payload is not None and not self._content_type_set:
                headers["Content-Type"] = body.content_type
            elif payload is not None and isinstance(body, MultipartBody):
                add_boundary(headers, body.content_type)
            if pending.digest is not None:
                headers[self.settings.idempotency_key_header] = pending.digest.hexdigest()
            if payload is not None and self.settings.compression == "gzip":
                payload = gzip_payload(payload)
                headers["Content-Encoding"] = "gzip"
        except Exception as exc:
            self._count("not_sent", body.count)
            raise self._unexpected(exc, pending.url)  # noqa: B904 - the cause stays as context
        request = Request(method, pending.url, headers, payload, body.count)
        # Queued until a worker begins it: close() counts it as not sent if none does.
        self._queued[pending.first_seq] = pending
        # Keyed by URL across streams: no two streams' updates of a thing overlap.
        self._dispatcher.submit(pending.url, lambda: self._deliver(pending, request))

    def _deliver(self, pending: Pending, request: Request) -> None:
        """Send one request (maybe on a worker thread) and acknowledge its records.

        Its records are counted once, whatever happens: an error nobody planned for
        counts them as failed and ends the run without acknowledging them.
        """
        count = pending.body.count
        del self._queued[pending.first_seq]
        if self._stop.is_set():
            self._count("interrupted", count)
            return
        self._count("requests", 1)
        outcome = {"failed": count}
        stop = None  # failed items with fail_on_error: raised once their records are counted
        try:
            outcome, stop = self._attempt(pending, request)
        except Stopped:
            outcome = {"interrupted": count}
            raise
        except Exception as exc:
            raise self._unexpected(exc, request.url)  # noqa: B904 - the cause stays as context
        finally:
            for what, n in outcome.items():
                self._count(what, n)
        if stop is not None:
            raise stop
        self.tracker.close(pending.first_seq)

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
            self._count("retries", exc.attempts - 1)
            self._save_response(pending, request, exc.response, exc.attempts, str(exc))
            failure = {
                "error": str(exc),
                "method": request.method,
                "url": redact_url(request.url),
                "status": exc.status,
                "answer": exc.answer,
                "attempts": exc.attempts,
            }
            records = pending.records.payload() if pending.records is not None else None
            error = DeliveryError(f"stream '{self.stream_name}': {exc}", status=exc.status)
            self._failed(error, failure, _lines(records))
            return {"failed": count}, None
        self._count("retries", attempts - 1)
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
            keys = pending.keys if self._all_keys else []
            status = response.status_code
            stop = stopping_error(self.stream_name, where, status, failures, keys, self._redactor)
            return outcome, stop
        records = _lines(pending.records.payload()) if pending.records is not None else []
        url = redact_url(request.url)
        for item in failures:
            failure = error_details(
                where, request.method, url, response.status_code, attempts, item
            )
            error = DeliveryError(f"stream '{self.stream_name}': {failure['error']}")
            self._failed(error, failure, records[item.index : item.index + 1])
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
        if self._responses is None:
            return
        count = pending.body.count
        if self.settings.answers.fields:
            status = None if response is None else response.status_code
            keys = pending.keys if self._all_keys else []
            results = record_results(count, keys, error, verdict, failures)
            self._responses.write_records(self.stream_name, status, results)
            return
        keys: dict[str, Any] = {"records": count}
        if pending.keys and self.settings.request_mode == "single":
            keys["keys"] = pending.keys[0]
        elif pending.keys:
            keys["first_keys"], keys["last_keys"] = pending.keys[0], pending.keys[-1]
        self._responses.write(
            stream=self.stream_name,
            method=request.method,
            url=request.url,
            response=response,
            attempts=attempts,
            error=error,
            keys=keys,
        )

    def _count(self, what: str, n: int) -> None:
        with self._tally_lock:
            setattr(self.tally, what, getattr(self.tally, what) + n)

    def _failed(self, error: RecordError | DeliveryError, failure: dict, records: Any) -> None:
        """Stop the run, or (fail_on_error false) record the failure and go on."""
        if self.settings.fail_on_error:
            raise error
        if self._errors is not None:
            self._errors.write({"stream": self.stream_name, **failure}, records)
        else:
            where = f"input line {failure['line']}: " if "line" in failure else ""
            self.logger.error("%s%s (fail_on_error is false: the run goes on)", where, error)

    def _unexpected(self, exc: BaseException, url: str) -> BaseException:
        """An error nobody planned for, as one line naming the stream and the request.

        Errors the user can act on, a stop, and interpreter exits pass as they are.
        """
        if isinstance(exc, TargetError | Stopped) or not isinstance(exc, Exception):
            return exc
        return Unexpected(
            f"stream '{self.stream_name}': {self.settings.method} {redact_url(url)}: "
            f"unexpected {type(exc).__name__}: {exc}; nothing past this record was "
            "acknowledged: rerun from the last STATE, and report this error if it persists"
        )

    def _headers_are_static(self) -> bool:
        return not any(template.fields for template in self.settings.headers.values())

    def _headers(self, record: dict[str, Any]) -> dict[str, str]:
        return {
            name: check_header_value(name, template.render(record))
            for name, template in self.settings.headers.items()
        }


def _lines(records: Any) -> list[bytes]:
    """Split the kept records (bytes or a spooled file) back into one record a line."""
    if records is None:
        return []
    data = records if isinstance(records, bytes) else records.read()
    return data.split(b"\n")
