"""One sink per stream: shape each record into a request as it arrives, and send it.

A record is encoded once on arrival (its raw JSON bytes when it passes through as is).
`single` sends at once; `batch` and `one` collect encoded bytes per rendered URL and
headers, in input order. With hard_delete a deleted record becomes a request of its own,
sent after every earlier record of the stream. Every delivery acknowledges its records to
the STATE tracker.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from math import inf
from typing import TYPE_CHECKING, Any

from target_restapi.errors import RecordError
from target_restapi.output.progress import Tally
from target_restapi.output.redact import redact_url
from target_restapi.sdk_seam import SeamSink
from target_restapi.settings.deletes import lacks_deleted_at
from target_restapi.settings.streams import StreamSettings, resolve
from target_restapi.shaping.bodies import Body, MultipartBody, encode_json
from target_restapi.shaping.deletes import DELETED_AT, DeleteShaper, NoBody, is_deleted
from target_restapi.shaping.shapers import make_shaper
from target_restapi.singer_input.validation import RecordValidator, decode_record
from target_restapi.stream.delivery import StreamDelivery
from target_restapi.stream.fast_lane import BatchLane
from target_restapi.stream.pending import Pending
from target_restapi.templates import check_header_value, render_url

if TYPE_CHECKING:
    from target_restapi.target import TargetRestApi


class RestSink(SeamSink):
    """Delivers one stream's records to its endpoint."""

    def __init__(
        self,
        target: TargetRestApi,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: list[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        services = target.services  # the one read off the target: all a sink needs of the run
        self.settings: StreamSettings = resolve(services.config, stream_name)
        # The SDK took the _sdc_* properties out of `schema`; the tap's are in original_schema.
        self.settings.check_against_schema(schema, self.original_schema)
        self.tracker = services.tracker
        self._line_number = services.line_number
        self._delivery = StreamDelivery(
            services, self.settings, stream_name, self.logger, keyed=bool(self.key_properties)
        )
        self.tally: Tally = self._delivery.tally
        columns = list(schema.get("properties") or {})
        self._shaper = make_shaper(
            self.settings.shape, columns, single=self.settings.request_mode == "single"
        )
        # Oldest group first; an OrderedDict pops its first entry in O(1), a dict does not.
        self._pending: OrderedDict[Any, Pending] = OrderedDict()
        self._static_headers = self._headers({}) if self._headers_are_static() else None
        self._fixed_route = None
        if not self.settings.url.fields and self._static_headers is not None:
            url = self.settings.url.text
            self._fixed_route = (url, url, self._static_headers)
        self._raw_items = self._shaper.raw_ok
        # Every record's keys when the answer speaks per record; else the first and last.
        self._all_keys = self._delivery.all_keys
        self._keep_keys = self._all_keys or (
            self._delivery.responses is not None and bool(self.key_properties)
        )
        # An idempotency key hashes a raw record as received: only keys need the record.
        self._needs_record = not (self._raw_items and self._fixed_route and not self._keep_keys)
        self._empty_body = self._shaper.new_body(spool=False)  # measures a record alone
        self._validator_kept = self.validator  # read once: `accept` runs for every record
        deletes = self.settings.deletes
        self._deletes = None
        if deletes is not None:
            self._deletes = DeleteShaper(deletes.payload, columns)
            if DELETED_AT not in (self.original_schema.get("properties") or {}):
                services.notices.warn((DELETED_AT, stream_name), lacks_deleted_at(stream_name))
        self._deleting = False  # the last record was a delete: the next one waits for it
        # The common batch case: the reader collects records for the open body
        # (stream/fast_lane.py); None when a record needs more than a check.
        self.lane = self._lane()

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

    def check_mapped(self, record: dict) -> dict:
        """Validate a mapped record; keep its date-time text as received.

        The SDK's version logs a traceback before raising and rewrites date-times.
        """
        if self._validator_kept is not None:
            self._validator_kept.validate(record)
        return record

    def keeps_deleted_at(self) -> bool:
        """A mapped record keeps its `_sdc_deleted_at` when deletes are mirrored."""
        return self._deletes is not None

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
        unsent = self._delivery.close() + sum(p.body.count for p in self._pending.values())
        for pending in self._pending.values():
            pending.release()
        self._pending.clear()
        self._delivery.count("not_sent", unsent)

    @property
    def undelivered(self) -> int:
        """Records never sent (pending, queued, or counted so at close), or stopped mid-retry."""
        pending = sum(p.body.count for p in self._pending.values())
        tally = self.tally
        return pending + self._delivery.queued_records + tally.interrupted + tally.not_sent

    # The record path

    def accept(self, raw: bytes) -> None:
        """A record straight from the input: validate its raw JSON, decode only if needed."""
        validator = self._validator_kept
        record = None if validator is None else validator.check(raw)
        if record is None and (self._needs_record or validator is None):
            record = decode_record(raw, self.stream_name)
            if validator is None:
                self.require_key_properties(record)
        self.add(record, raw)

    def add(self, record: dict[str, Any] | None, raw: bytes | None) -> None:
        """Shape one record into a request, or into its group's pending batch."""
        self.tally.received += 1
        if self._deletes is not None and self._deleted(record, raw):
            return
        route = self._fixed_route
        if route is None:
            assert record is not None, "without a fixed route, accept decodes every record"
            route = self._route(record, raw)
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
            cut = isinstance(body, Body | MultipartBody) and body.size + body.extra(item) > cap
            if cut:
                item = self._item(record, raw, None, url)  # it will start a new body
            if pending is None or cut:
                size = self._empty_body.size + self._empty_body.extra(item)
                if size > cap:  # the open batch, if any, stays open for the next records
                    self._too_large(size, cap, record, raw)
                    return
            if cut:
                del self._pending[key]
                # A cut needs an open batch, so pending is set.
                self._delivery.send(pending)  # type: ignore[arg-type]
                pending = None
        if pending is None:
            if mode != "single" and len(self._pending) >= self.settings.max_open_batches:
                self._delivery.send(self._pending.popitem(last=False)[1])  # the oldest group
            # Later records of a group are covered by the unit its first record opens.
            self.tracker.open(seq)
            pending = self._new_pending(seq, url, headers, mode=mode)
            if mode != "single":
                self._pending[key] = pending
        body = pending.body
        body.add(item)
        self._keep(pending, record, raw, item)
        if mode == "single":
            self._delivery.send(pending)
        elif mode == "batch" and body.count >= self.settings.batch_size:
            del self._pending[key]
            self._delivery.send(pending)

    def _keep(self, pending: Pending, record: Any, raw: bytes | None, item: Any) -> None:
        """What a request keeps of each record: for the error file, the key, the responses."""
        if pending.records is not None:
            pending.records.add(raw if raw is not None else encode_json(record))
        if pending.digest is not None:
            if item is raw:  # the record as received: its keys are in it
                pending.digest.update(item)
            else:
                values = [record.get(name) for name in self.key_properties]
                pending.digest.update(encode_json([values, item]))
        if self._keep_keys:
            keys = self._keys_of(record)
            if self._all_keys or not pending.keys:
                pending.keys.append(keys)
            else:
                pending.keys[1:] = [keys]

    def _deleted(self, record: dict[str, Any] | None, raw: bytes | None) -> bool:
        """Send a deleted record as its delete request (True), after every earlier record.

        The first delete after records sends the open batches and waits for the stream's
        requests in flight; a record after deletes waits for theirs. A run of deletes
        between records costs one cut (see docs/deletes.md).
        """
        if not is_deleted(record, raw):
            if self._deleting:
                self._deleting = False
                self._delivery.wait()
            return False
        self.tally.deletes += 1
        if record is None:
            # Without the decoded record, its raw JSON is always given.
            record = decode_record(raw, self.stream_name)  # type: ignore[arg-type]
        route = self._route(record, raw, delete=True)
        if route is None:
            return True
        _key, url, headers = route
        try:
            # Deleting implies hard_delete, so the delete shaper is set.
            body, item = self._deletes.body(record)  # type: ignore[union-attr]
        except Exception as exc:
            self._delivery.count("not_sent", 1)
            raise self._delivery.unexpected(exc, url)  # noqa: B904 - the cause stays as context
        if not self._deleting:
            self._deleting = True
            self.finish()
        seq = self.tracker.next_seq()
        self.tracker.open(seq)
        pending = self._new_pending(seq, url, headers, mode="single", body=body)
        self._keep(pending, record, raw, item)
        self._delivery.send(pending)
        return True

    def _item(self, record: Any, raw: bytes | None, pending: Pending | None, url: str) -> Any:
        """The record encoded for its place in the body: raw JSON when it goes as received."""
        if self._raw_items and raw is not None:
            return raw
        try:
            return self._shaper.item(record, raw, 0 if pending is None else pending.body.count)
        except Exception as exc:
            self._delivery.count("not_sent", 1)
            raise self._delivery.unexpected(exc, url)  # noqa: B904 - the cause stays as context

    def _too_large(self, size: int, cap: int, record: Any, raw: bytes | None) -> None:
        """A record whose request body alone would pass batch_max_bytes: a record error."""
        self._record_failed(
            f"the record alone makes a {size}-byte request body, over batch_max_bytes "
            f"({cap}); raise batch_max_bytes or shrink the record",
            record,
            raw,
        )

    def _record_failed(
        self, problem: str, record: Any, raw: bytes | None, *, delete: bool = False
    ) -> None:
        """A record that cannot become a request: counted as failed, the input line named."""
        method, template = self.settings.request_of(delete=delete)
        failure = {
            "error": problem,
            "line": self._line_number(),
            "method": method,
            "url": redact_url(template.text),
            "status": None,
            "answer": None,
            "attempts": 0,
        }
        self._delivery.count("failed", 1)
        self._delivery.failed(
            RecordError(f"stream '{self.stream_name}': {problem}"),
            failure,
            [raw if raw is not None else encode_json(record)],
        )

    def _route(
        self, record: dict[str, Any], raw: bytes | None, *, delete: bool = False
    ) -> tuple | None:
        """(group key, URL, headers) of a record; None when they can't be rendered."""
        template = self.settings.request_of(delete=delete)[1]
        try:
            url = render_url(template, record)
            headers = self._static_headers
            if headers is None:
                headers = self._headers(record)
        except RecordError as exc:
            self._record_failed(str(exc), record, raw, delete=delete)
            return None
        except Exception as exc:
            self._delivery.count("not_sent", 1)
            raise self._delivery.unexpected(exc, template.text)  # noqa: B904 - kept as context
        return (url if self._static_headers is not None else (url, *headers.items())), url, headers

    def flush(self) -> None:
        """Send every pending batch, oldest group first."""
        while self._pending:
            self._delivery.send(self._pending.popitem(last=False)[1])

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
            self._delivery.send(self._pending.pop(key))
        return None

    def finish(self) -> None:
        """Send what is pending and wait until every request has an answer."""
        self.flush()
        self._delivery.wait()

    def _new_pending(
        self,
        seq: int,
        url: str,
        headers: dict[str, str],
        *,
        mode: str,
        body: Body | MultipartBody | NoBody | None = None,
    ) -> Pending:
        """A request to fill with records; a delete request comes with its `body`."""
        spool = mode == "one"
        records = None
        if self._delivery.errors is not None:
            records = Body(content_type="", separator=b"\n", spool=spool)
        digest = None
        delete = body is not None
        if self.settings.idempotency_key_header:
            method = self.settings.request_of(delete=delete)[0]
            digest = hashlib.sha256(encode_json([self.stream_name, method, url]))
        opened = time.monotonic() if mode == "batch" else 0.0
        if body is None:
            body = self._shaper.new_body(spool=spool)
        return Pending(seq, url, headers, body, records, digest, opened, delete=delete)

    def _lane(self) -> BatchLane | None:
        """The lane of this stream's records, when all they need is a msgspec check."""
        decoder = getattr(self._validator_kept, "raw_decoder", None)  # None: no validation
        mode, route = self.settings.request_mode, self._fixed_route
        plain = self._raw_items and not self._all_keys and self._deletes is None
        uncapped = self.settings.batch_max_bytes is None  # else each record's size counts
        if route is None or not (decoder and plain and uncapped and mode != "single"):
            return None
        group = (self._pending, route[0], self.settings.batch_size if mode == "batch" else inf)
        last_keys = self._keys_of if self._keep_keys else None  # a response file's last_keys
        counters, send = (self.tally, self.tracker), self._delivery.send
        return BatchLane(decoder.decode, group, counters, send, self.accept, last_keys)

    def _keys_of(self, record: dict[str, Any] | bytes) -> dict[str, Any]:
        """A record's key properties (raw JSON is decoded), as a response file names them."""
        if not isinstance(record, dict):
            record = decode_record(record, self.stream_name)
        return {name: record.get(name) for name in self.key_properties}

    def _headers_are_static(self) -> bool:
        return not any(template.fields for template in self.settings.headers.values())

    def _headers(self, record: dict[str, Any]) -> dict[str, str]:
        return {
            name: check_header_value(name, template.render(record))
            for name, template in self.settings.headers.items()
        }
