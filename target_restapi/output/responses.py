"""Response files: one entry per request, per stream and run, in a folder fsspec can open.

With `response_fields` an entry is written per record instead: its key properties, the
answer's status, its error if it failed, and the fields picked from its answer or entry.

Entries are written and flushed as answers arrive, before the STATE that covers their
request is released, so a STATE never points past an answer that was not saved. Local
folders, `file://` and `memory://` work out of the box; `s3://` and others through their
fsspec packages (extras), which may upload only when the file is closed.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import fsspec
import msgspec
from fsspec.implementations.local import LocalFileSystem

from target_restapi.delivery.answers import RECORD_COLUMNS
from target_restapi.output.redact import Redactor, redact_url
from target_restapi.settings.fs_packages import missing_package
from target_restapi.shaping.bodies import CsvLines, encode_json

OPEN_FILES = 64  # local response files open at once; the others are reopened to append
FORMATS = ("jsonl", "csv", "json")
BODY_LIMIT = 64 * 1024
DECODED = BODY_LIMIT + 4096  # bytes decoded: masking may shorten the text below the limit
KEPT_HEADERS = re.compile(
    r"^(content-type|location|retry-after|x-ratelimit-.*|ratelimit-.*|x-rate-limit-.*)$", re.I
)
CSV_COLUMNS = (
    "stream", "request", "time", "method", "url", "status", "elapsed_ms", "attempts",
    "error", "headers", "body", "records", "keys", "first_keys", "last_keys",
)  # fmt: skip


def safe_name(stream: str) -> str:
    """A stream name usable as a file name anywhere (`:`, `/`, `?` and the like become `_`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", stream).strip(".") or "stream"


def answer_body(content: bytes, content_type: str, redact: Redactor) -> Any:
    """The answer's body for the file: parsed JSON when it is JSON, else text; cut at 64 KiB.

    Secrets are masked in every string of parsed JSON (where escapes are undone), and in
    the text otherwise, before it is cut (`content` may itself be only the answer's start).
    """
    text = content[:DECODED].decode("utf-8", errors="replace")
    if len(content) <= BODY_LIMIT and "json" in content_type.lower():
        try:
            return _masked(msgspec.json.decode(text), redact)
        except msgspec.DecodeError:
            pass
    if len(content) <= BODY_LIMIT:
        return redact.text(text)
    return redact.clip(text, BODY_LIMIT, cut=True)


def _masked(value: Any, redact: Redactor) -> Any:
    """Parsed JSON with secrets masked in every string, keys included."""
    if isinstance(value, str):
        return redact.text(value)
    if isinstance(value, list):
        return [_masked(item, redact) for item in value]
    if isinstance(value, dict):
        return {redact.text(k): _masked(v, redact) for k, v in value.items()}
    return value


def kept_headers(headers: Any, redact: Redactor) -> dict[str, str]:
    """Content-Type, Location and rate-limit headers, masked; never cookies or credentials."""
    return {
        name: redact.text(redact_url(value) if name.lower() == "location" else value)
        for name, value in headers.items()
        if KEPT_HEADERS.match(name)
    }


def check_folder(folder: str) -> str | None:
    """What keeps fsspec from writing to `folder`: an unknown or uninstalled protocol.

    Asked at start-up: some drivers are found missing only when first opened.
    """
    protocol = fsspec.core.split_protocol(folder)[0] or "file"
    missing = missing_package(protocol)
    if missing:
        package, extra = missing
        return (
            f"{protocol}:// needs the {package} package, which is not installed; "
            f"install it with pip install 'target-restapi[{extra}]'"
        )
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        return (
            f"{protocol}:// cannot be used ({exc}); install the fsspec package for it "
            "(extras target-restapi[s3], [gcs], [azure] and [hdfs] bring the common ones)"
        )
    return None


class OpenFiles:
    """At most `limit` local response files hold a file descriptor at once.

    The least recently written is closed and reopened for appending when next written:
    10,000 streams saving responses need no 10,000 descriptors. Writes to all the files
    it keeps go under its one lock (an entry is one short write), so closing another
    stream's file never races that stream's write. Remote files hold no descriptor.
    """

    def __init__(self, limit: int = OPEN_FILES) -> None:
        self.lock = threading.Lock()
        self._limit = limit
        self._open: OrderedDict[ResponseFile, None] = OrderedDict()

    def used(self, file: ResponseFile) -> None:
        """`file` was just written (lock held): close the least recent ones beyond the limit."""
        self._open[file] = None
        self._open.move_to_end(file)
        while len(self._open) > self._limit:
            self._open.popitem(last=False)[0].park()

    def forget(self, file: ResponseFile) -> None:
        """`file` is closed for good (lock held)."""
        self._open.pop(file, None)


class ResponseFile:
    """The response file of one stream for this run."""

    def __init__(
        self,
        folder: str,
        stream: str,
        file_format: str,
        redactor: Redactor,
        files: OpenFiles | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        """`fields`: the response_fields names; then an entry is written per record."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{safe_name(stream)}-{stamp}.{file_format}"
        self._fs, root = fsspec.core.url_to_fs(folder)
        self._fs.makedirs(root, exist_ok=True)
        self.path = redact_url(f"{folder.rstrip('/')}/{name}")  # for messages: no password
        self._where = f"{root.rstrip('/')}/{name}"
        self._local = isinstance(self._fs, LocalFileSystem)
        self._file: Any = self._fs.open(self._where, "wb")
        self._format = file_format
        self._redactor = redactor
        self._files = files or OpenFiles()
        self._lock = self._files.lock
        self._count = 0
        self._written = False  # an entry is in the file (a JSON array needs commas)
        self._csv = CsvLines()
        self._fields = fields
        self._columns = (*RECORD_COLUMNS, *fields) if fields else CSV_COLUMNS
        with self._lock:
            if file_format == "csv":
                self._write(self._csv.line(self._columns))
            elif file_format == "json":
                self._write(b"[")

    def write(
        self,
        *,
        stream: str,
        method: str,
        url: str,
        response: Any,
        attempts: int,
        error: str | None,
        keys: dict[str, Any],
    ) -> None:
        """Add one request's entry (answer or failure) and flush it."""
        entry = {
            "stream": stream,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": method,
            "url": redact_url(url),
            "status": None if response is None else response.status_code,
            "elapsed_ms": None,
            "attempts": attempts,
            "error": None if error is None else self._redactor.text(error),
            "headers": {},
            "body": None,
            **keys,
        }
        if response is not None:
            content_type = response.headers.get("Content-Type", "")
            entry["elapsed_ms"] = round(response.elapsed.total_seconds() * 1000, 1)
            entry["headers"] = kept_headers(response.headers, self._redactor)
            entry["body"] = answer_body(response.content, content_type, self._redactor)
        with self._lock:
            self._count += 1
            self._add([{"stream": stream, "request": self._count, **entry}])

    def write_records(
        self,
        stream: str,
        status: int | None,
        results: list[tuple[dict[str, Any], str | None, dict[str, Any] | None]],
    ) -> None:
        """Add one entry per record of a request, in input order, and flush them.

        `results` holds each record's (key properties, error, picked fields); secrets are
        masked in the error and the fields.
        """
        redact = self._redactor
        entries = [
            {
                "stream": stream,
                "keys": keys,
                "status": status,
                "error": None if error is None else redact.text(error),
                **(_masked(fields, redact) if fields else dict.fromkeys(self._fields)),
            }
            for keys, error, fields in results
        ]
        with self._lock:
            self._add(entries)

    def _add(self, entries: list[dict[str, Any]]) -> None:
        """Write entries in the file's format (lock held)."""
        if not entries:
            return
        if self._format == "csv":
            rows = [[_cell(entry.get(c)) for c in self._columns] for entry in entries]
            self._write(b"".join(self._csv.line(row) for row in rows))
        elif self._format == "json":
            lead = b"," if self._written else b""
            self._write(lead + b",".join(encode_json(entry) for entry in entries))
        else:
            self._write(b"".join(encode_json(entry) + b"\n" for entry in entries))
        self._written = True

    def park(self) -> None:
        """Close the descriptor until the next write (lock held); the entries are kept."""
        self._file.close()
        self._file = None

    def close(self) -> None:
        """End the file (the JSON array's closing bracket) and close it."""
        with self._lock:
            if self._format == "json":
                self._write(b"]")
            self._files.forget(self)
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write(self, data: bytes) -> None:
        """Write and flush (lock held), reopening a parked file for appending."""
        if self._file is None:
            self._file = self._fs.open(self._where, "ab")
        self._file.write(data)
        self._file.flush()
        if self._local:
            self._files.used(self)


def _cell(value: Any) -> str:
    """A CSV cell: text as is, null empty, everything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else encode_json(value).decode()
