"""A request in the making: the records a sink has put into one body, not yet sent.

Finishing it (payload, Content-Type, idempotency key, compression) happens once, when the
sink cuts it; what the body and the kept records become is decided here, not in the sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from target_restapi.delivery.transport import Request
from target_restapi.settings.streams import StreamSettings
from target_restapi.shaping.bodies import Body, MultipartBody, add_boundary, gzip_body
from target_restapi.shaping.deletes import NoBody


@dataclass(slots=True)
class Pending:
    """What one request will carry: its first record's sequence, URL, headers and body.

    `records` keeps the records as received only when failures go to an error file;
    `digest` grows with the body only when an idempotency key is asked for; `keys` holds
    the key properties of the first and last record when responses are saved (of every
    record when the answer speaks per record). A delete request carries one deleted record.
    """

    first_seq: int
    url: str
    headers: dict[str, str]
    body: Body | MultipartBody | NoBody
    records: Body | None
    digest: Any
    opened: float  # monotonic time of its first record (batch mode only; 0 otherwise)
    keys: list[dict[str, Any]] = field(default_factory=list)
    delete: bool = False  # a delete request (hard_delete), of one deleted record
    spooled: list[Any] = field(default_factory=list)  # files to close once it is done with

    def request(self, settings: StreamSettings, *, content_type_set: bool) -> Request:
        """The finished request: its body, its headers, compressed if asked."""
        body = self.body
        method = settings.request_of(delete=self.delete)[0]
        data = None if method == "GET" else body.finish()
        headers = dict(self.headers)
        if data is not None and not content_type_set:
            headers["Content-Type"] = body.content_type
        elif data is not None and isinstance(body, MultipartBody):
            add_boundary(headers, body.content_type)
        key_header = settings.idempotency_key_header
        if self.digest is not None and key_header is not None:  # a digest is kept only for it
            headers[key_header] = self.digest.hexdigest()
        if data is not None and settings.compression == "gzip":
            data = gzip_body(data)
            headers["Content-Encoding"] = "gzip"
            if not isinstance(data, bytes):
                self.spooled.append(data)
        # A delete's answer is judged by its status only: it is often empty and has no items.
        return Request(method, self.url, headers, data, body.count, judged=not self.delete)

    def release(self) -> None:
        """Close the spooled files (one mode, gzip) of a request answered or never sent."""
        for body in (self.body, self.records):
            if isinstance(body, Body):
                body.close()
        for file in self.spooled:
            file.close()

    def kept_lines(self) -> list[bytes]:
        """The kept records (bytes or a spooled file), back into one record a line."""
        if self.records is None:
            return []
        records = self.records.finish()
        data = records if isinstance(records, bytes) else records.read()
        return data.split(b"\n")
