"""One sink per stream: shape each record into a request as it arrives, and send it.

A record is encoded once on arrival (its raw JSON bytes when it passes through as is).
`single` sends at once; `batch` and `one` collect encoded bytes per rendered URL and
headers, in input order. Every delivery acknowledges its records to the STATE tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import Sink

from target_restapi.encoding import JsonArray, encode_json
from target_restapi.errors import DeliveryError, InputError, RecordError
from target_restapi.settings import StreamSettings, resolve
from target_restapi.templates import check_header_value, render_url
from target_restapi.transport import Request, Transport
from target_restapi.validation import CompiledValidator

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_restapi.state import StateTracker

JSON_CONTENT_TYPE = "application/json"


@dataclass(slots=True)
class Pending:
    """Records collected for one request: the sequence of the first, and their bytes."""

    first_seq: int
    url: str
    headers: dict[str, str]
    body: JsonArray


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
        self._pending: dict[Any, Pending] = {}
        self._static_headers = self._headers({}) if self._headers_are_static() else None

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
        """Records that came through stream maps: encode the transformed record."""
        self.add(record, encode_json(record))

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

    def accept(self, record: dict[str, Any], raw: bytes) -> None:
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

    def add(self, record: dict[str, Any], body: bytes) -> None:
        """Shape one encoded record into a request, or into its group's pending batch."""
        self.tally.received += 1
        try:
            url = render_url(self.settings.url, record)
            headers = self._static_headers or self._headers(record)
        except RecordError as exc:
            self._record_failed(RecordError(f"stream '{self.stream_name}': {exc}"), 1)
            return
        seq = self.tracker.next_seq()
        if self.settings.request_mode == "single":
            self.tracker.open(seq)
            self._send(seq, Request(self.settings.method, url, headers, bytes(body)), 1)
            return
        key = url if self._static_headers else (url, tuple(headers.items()))
        pending = self._pending.get(key)
        if pending is None:
            # Later records of the group are covered by the unit its first record opens.
            self.tracker.open(seq)
            spool = self.settings.request_mode == "one"
            pending = self._pending[key] = Pending(seq, url, headers, JsonArray(spool=spool))
        pending.body.add(body)
        if pending.body.count >= self.settings.batch_size and self.settings.request_mode == "batch":
            del self._pending[key]
            self._send_pending(pending)

    def flush(self) -> None:
        """Send every pending batch, oldest group first."""
        while self._pending:
            key = next(iter(self._pending))
            self._send_pending(self._pending.pop(key))

    def _send_pending(self, pending: Pending) -> None:
        request = Request(self.settings.method, pending.url, pending.headers, pending.body.body())
        self._send(pending.first_seq, request, pending.body.count)

    def _send(self, first_seq: int, request: Request, count: int) -> None:
        if request.method == "GET":
            request = Request(request.method, request.url, request.headers, None)
        self.tally.requests += 1
        try:
            self._transport.send(request)
        except DeliveryError as exc:
            error = DeliveryError(f"stream '{self.stream_name}': {exc}", status=exc.status)
            self._record_failed(error, count)
        else:
            self.tally.delivered += count
        self.tracker.close(first_seq)

    def _record_failed(self, error: RecordError | DeliveryError, count: int) -> None:
        """Stop the run, or (fail_on_error false) log and count the failure and go on."""
        if self.settings.fail_on_error:
            raise error
        self.tally.failed += count
        self.logger.error("%s (fail_on_error is false: the run goes on)", error)

    def _headers_are_static(self) -> bool:
        return not any(template.fields for template in self.settings.headers.values())

    def _headers(self, record: dict[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        for name, template in self.settings.headers.items():
            if name.lower() == "content-type":
                del headers["Content-Type"]
            headers[name] = check_header_value(name, template.render(record))
        return headers
