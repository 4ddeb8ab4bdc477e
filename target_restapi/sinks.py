"""One sink per stream: shape each record into a request as it arrives, and send it.

A record is encoded once on arrival (its raw JSON bytes when it passes through as is).
`single` sends at once; `batch` and `one` collect encoded bytes per rendered URL and
headers, in input order. Every delivery acknowledges its records to the STATE tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import Sink

from target_restapi.encoding import Body, MultipartBody
from target_restapi.errors import DeliveryError, InputError, RecordError
from target_restapi.settings import StreamSettings, resolve
from target_restapi.shaping import make_shaper
from target_restapi.templates import check_header_value, render_url
from target_restapi.transport import Request, Transport
from target_restapi.validation import CompiledValidator

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_restapi.state import StateTracker


@dataclass(slots=True)
class Pending:
    """Records collected for one request: the sequence of the first, and their bytes."""

    first_seq: int
    url: str
    headers: dict[str, str]
    body: Body | MultipartBody


@dataclass(slots=True)
class Tally:
    """What happened to a stream's records, for the run summary."""

    received: int = 0
    delivered: int = 0
    failed: int = 0
    requests: int = field(default=0)


class RestSink(Sink):
    """Delivers one stream's records to its endpoint."""

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: list[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.settings: StreamSettings = resolve(target.config, stream_name)
        self.settings.check_against_schema(schema)
        self.tracker: StateTracker = target.tracker  # type: ignore[attr-defined]
        self.tally = Tally()
        self._transport = Transport(
            auth=self.settings.auth,
            timeout_seconds=self.settings.timeout_seconds,
            sleep_seconds=self.settings.sleep_seconds,
        )
        self._shaper = make_shaper(
            self.settings.shape,
            list(schema.get("properties") or {}),
            single=self.settings.request_mode == "single",
        )
        self._pending: dict[Any, Pending] = {}
        self._static_headers = self._headers({}) if self._headers_are_static() else None
        self._content_type_set = any(h.lower() == "content-type" for h in self.settings.headers)

    # SDK hooks

    def get_validator(self) -> CompiledValidator | None:
        """A compiled validator: the SDK's jsonschema default is the slowest per-record step."""
        return CompiledValidator(self.schema, self.stream_name) if self.validate_schema else None

    @property
    def is_full(self) -> bool:
        """Never: this sink cuts its own requests, so the SDK must not drain it."""
        return False

    def _parse_timestamps_in_record(self, *_args: Any, **_kwargs: Any) -> None:
        """Keep date-time text as received instead of the SDK's rewritten datetimes."""

    def process_record(self, record: dict, context: dict) -> None:
        """Records that came through stream maps: shape the transformed record."""
        self.add(record, None)

    def process_batch(self, context: dict) -> None:
        """The SDK asks for a drain: send what is pending."""
        self.flush()

    def clean_up(self) -> None:
        """Send what is pending, log the stream's summary, close connections."""
        self.flush()
        self._transport.close()
        t = self.tally
        self.logger.info(
            "stream '%s': %d records received, %d delivered, %d failed, in %d requests",
            self.stream_name,
            t.received,
            t.delivered,
            t.failed,
            t.requests,
        )

    # The record path

    def accept(self, record: dict[str, Any], raw: bytes | None) -> None:
        """A record straight from the input: validate it, then pass its raw bytes on."""
        if self._validator is not None:
            self._validator.validate(record)
        for key in self.key_properties:
            if key not in record:
                raise InputError(
                    f"a record of stream '{self.stream_name}' lacks key property '{key}'; "
                    "fix the tap's output or its key_properties"
                )
        self.add(record, raw)

    def add(self, record: dict[str, Any], raw: bytes | None) -> None:
        """Shape one record into a request, or into its group's pending batch."""
        self.tally.received += 1
        try:
            url = render_url(self.settings.url, record)
            headers = self._static_headers
            if headers is None:
                headers = self._headers(record)
        except RecordError as exc:
            self._record_failed(RecordError(f"stream '{self.stream_name}': {exc}"), 1)
            return
        seq = self.tracker.next_seq()
        mode = self.settings.request_mode
        if mode == "single":
            self.tracker.open(seq)
            body = self._shaper.new_body(spool=False)
            body.add(self._shaper.item(record, raw, 0))
            self._send(Pending(seq, url, headers, body))
            return
        key = url if self._static_headers is not None else (url, tuple(headers.items()))
        pending = self._pending.get(key)
        if pending is None:
            # Later records of the group are covered by the unit its first record opens.
            self.tracker.open(seq)
            body = self._shaper.new_body(spool=mode == "one")
            pending = self._pending[key] = Pending(seq, url, headers, body)
        pending.body.add(self._shaper.item(record, raw, pending.body.count))
        if mode == "batch" and pending.body.count >= self.settings.batch_size:
            del self._pending[key]
            self._send(pending)

    def flush(self) -> None:
        """Send every pending batch, oldest group first."""
        while self._pending:
            self._send(self._pending.pop(next(iter(self._pending))))

    def _send(self, pending: Pending) -> None:
        """Send one request and acknowledge its records, delivered or recorded as failed."""
        body = pending.body
        payload = None if self.settings.method == "GET" else body.payload()
        headers = pending.headers
        if payload is not None and not self._content_type_set:
            headers = {**headers, "Content-Type": body.content_type}
        request = Request(self.settings.method, pending.url, headers, payload)
        self.tally.requests += 1
        try:
            self._transport.send(request)
        except DeliveryError as exc:
            error = DeliveryError(f"stream '{self.stream_name}': {exc}", status=exc.status)
            self._record_failed(error, body.count)
        else:
            self.tally.delivered += body.count
        self.tracker.close(pending.first_seq)

    def _record_failed(self, error: RecordError | DeliveryError, count: int) -> None:
        """Stop the run, or (fail_on_error false) log and count the failure and go on."""
        if self.settings.fail_on_error:
            raise error
        self.tally.failed += count
        self.logger.error("%s (fail_on_error is false: the run goes on)", error)

    def _headers_are_static(self) -> bool:
        return not any(template.fields for template in self.settings.headers.values())

    def _headers(self, record: dict[str, Any]) -> dict[str, str]:
        return {
            name: check_header_value(name, template.render(record))
            for name, template in self.settings.headers.items()
        }
