"""Request bodies assembled from records that were encoded on arrival.

A body holds encoded bytes, never record dicts; in `one` mode it spools to disk past a
few megabytes, so memory stays flat. Multipart bodies are encoded by urllib3.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any

import msgspec
from urllib3 import encode_multipart_formdata

from target_restapi.templates import as_text

SPOOL_BYTES = 8 * 1024 * 1024
# urllib3's multipart framing around a field, and after the last: its boundary has 32 hex
# digits; `--B\r\nContent-Disposition: form-data; name=""\r\n\r\n` + value + `\r\n`.
_MULTIPART_FIELD = 2 + 32 + 2 + len('Content-Disposition: form-data; name=""') + 4 + 2
_MULTIPART_END = 2 + 32 + 4  # `--B--\r\n`


class JsonNumber(Decimal):
    """A JSON number with a fraction or exponent, exact, that keeps its spelling (`1e3`)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text


_encoder = msgspec.json.Encoder(
    decimal_format="number", enc_hook=lambda number: msgspec.Raw(number.text.encode())
)

BodyBytes = bytes | IO[bytes]  # a finished body: bytes, or a spooled file


def encode_json(value: Any) -> bytes:
    """JSON bytes of a value; Decimals keep every digit."""
    return _encoder.encode(value)


def gzip_body(body: BodyBytes) -> BodyBytes:
    """The body gzip-compressed: bytes stay bytes, a spooled file streams into another."""
    if isinstance(body, bytes):
        return gzip.compress(body, compresslevel=6)
    packed = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=6) as zipped:
        shutil.copyfileobj(body, zipped)
    packed.seek(0)
    return packed


def field_text(value: Any) -> str:
    """A value as a CSV or form field: null empty, true/false, objects as JSON text."""
    return "" if value is None else as_text(value)


class CsvLines:
    """RFC 4180 lines from rows, through the csv module (quotes, delimiters, newlines)."""

    def __init__(self, delimiter: str = ",") -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter, lineterminator="\r\n")

    def line(self, row: Sequence[str]) -> bytes:
        """One encoded line, ending in CRLF."""
        self._writer.writerow(row)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()


def csv_escape(text: str, delimiter: str = ",") -> str:
    """Quote one CSV field when it holds a quote, the delimiter or a line break (RFC 4180)."""
    if delimiter in text or any(c in text for c in '"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class Body:
    """Encoded items joined between an opening and a closing, in memory or spooled."""

    __slots__ = (
        "_closing",
        "_file",
        "_opening",
        "_parts",
        "_separator",
        "content_type",
        "count",
        "size",
    )

    def __init__(
        self,
        *,
        content_type: str,
        opening: bytes = b"",
        separator: bytes = b"",
        closing: bytes = b"",
        spool: bool = False,
    ) -> None:
        self.content_type = content_type
        self._opening, self._separator, self._closing = opening, separator, closing
        self._file: IO[bytes] | None = None
        if spool:
            self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            self._file.write(opening)
        self._parts: list[bytes] = []
        self.count = 0
        self.size = len(opening) + len(closing)  # of the finished body, kept as items come

    def close(self) -> None:
        """Remove its spooled file, if any: the body was sent, or never will be."""
        if self._file is not None:
            self._file.close()

    def extra(self, item: bytes) -> int:
        """Bytes `item` would add to the finished body."""
        return len(item) + len(self._separator) if self.count else len(item)

    def add(self, item: bytes) -> None:
        """Append one encoded record (`extra` inlined: this runs for every record)."""
        self.size += len(item) + len(self._separator) if self.count else len(item)
        if self._file is None:
            self._parts.append(item)
        else:
            if self.count:
                self._file.write(self._separator)
            self._file.write(item)
        self.count += 1

    def extend(self, items: list[bytes]) -> None:
        """Append encoded records: as `add` for each, in a few native calls."""
        if not items:
            return
        separator = self._separator
        if self._file is None:
            self._parts.extend(items)
            gaps = len(items) if self.count else len(items) - 1
            self.size += sum(map(len, items)) + len(separator) * gaps
        else:
            joined = separator.join(items)
            if self.count:
                self._file.write(separator)
                self.size += len(separator)
            self._file.write(joined)
            self.size += len(joined)
        self.count += len(items)

    def finish(self) -> BodyBytes:
        """The finished body: bytes, or a file positioned at its start."""
        if self._file is None:
            return self._opening + self._separator.join(self._parts) + self._closing
        self._file.write(self._closing)
        self._file.seek(0)
        return self._file


class NdjsonBody(Body):
    """JSON lines: LF between items and after the last.

    NDJSON forbids a CR inside a line. Only a record's raw text can hold one, as
    whitespace between tokens (a JSON string cannot), so it becomes a space: checked once
    per body in memory, per item only when the body spools to disk.
    """

    __slots__ = ()

    def add(self, item: bytes) -> None:
        """Append one record's line(s)."""
        if self._file is not None:
            item = bytes(item).replace(b"\r", b" ")
        super().add(item)

    def extend(self, items: list[bytes]) -> None:
        """Append records' lines (no CR once spooled, as `add`)."""
        if self._file is not None:
            items = [bytes(item).replace(b"\r", b" ") for item in items]
        super().extend(items)

    def finish(self) -> BodyBytes:
        """The finished body, with no CR in it."""
        data = super().finish()
        return data.replace(b"\r", b" ") if isinstance(data, bytes) else data


class MultipartBody:
    """Form fields of several records, encoded as multipart/form-data by urllib3."""

    __slots__ = ("_closing", "_fields", "content_type", "count", "size")

    def __init__(self, closing: list[tuple[str, str]]) -> None:
        self._fields: list[tuple[str, str]] = []
        self._closing = closing
        self.content_type = "multipart/form-data"
        self.count = 0
        self.size = _MULTIPART_END + self.extra(closing)  # never less than the encoded body

    @staticmethod
    def extra(item: list[tuple[str, str]]) -> int:
        """Bytes `item`'s fields add at most: a field name may triple when it is escaped."""
        return sum(
            _MULTIPART_FIELD + 3 * len(name.encode()) + len(value.encode()) for name, value in item
        )

    def add(self, item: list[tuple[str, str]]) -> None:
        """Append one record's fields."""
        self.size += self.extra(item)
        self._fields.extend(item)
        self.count += 1

    def finish(self) -> BodyBytes:
        """The encoded body; `content_type` then carries its boundary."""
        body, self.content_type = encode_multipart_formdata(self._fields + self._closing)
        return body


def add_boundary(headers: dict[str, str], generated: str) -> None:
    """Give the user's multipart Content-Type the body's boundary, which only we know.

    Settings refuse any other Content-Type for form_data bodies, and a boundary of its own.
    """
    boundary = generated.partition(";")[2]
    for name, value in headers.items():
        if name.lower() == "content-type":
            headers[name] = f"{value.rstrip().rstrip(';')};{boundary}"
