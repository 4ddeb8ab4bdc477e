"""Request bodies built from records that are already encoded as JSON bytes.

Records are encoded once, on arrival; a batch holds bytes, never record dicts, and the
`one` mode spools its array to disk past a few megabytes so memory stays flat.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

import msgspec

SPOOL_BYTES = 8 * 1024 * 1024
_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_json(value: Any) -> bytes:
    """JSON bytes of a value; Decimals keep every digit."""
    return _encoder.encode(value)


class JsonArray:
    """Encoded records joined into one JSON array, in memory or spooled to a temp file."""

    __slots__ = ("_file", "_parts", "count")

    def __init__(self, *, spool: bool) -> None:
        self._file: IO[bytes] | None = (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) if spool else None  # noqa: SIM115
        )
        self._parts: list[bytes] = []
        self.count = 0

    def add(self, item: bytes) -> None:
        """Append one encoded record."""
        if self._file is None:
            self._parts.append(item)
        else:
            self._file.write(b"," if self.count else b"[")
            self._file.write(item)
        self.count += 1

    def body(self) -> bytes | IO[bytes]:
        """The finished array: bytes, or a file positioned at its start."""
        if self._file is None:
            return b"[" + b",".join(self._parts) + b"]"
        self._file.write(b"]")
        self._file.seek(0)
        return self._file
