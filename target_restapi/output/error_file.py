"""The error file: one JSON line per failed record, written and flushed at once.

Flushed before the STATE that passes the record can be emitted, so a STATE never
points past a failure that was not recorded. Shared by streams, so writes are locked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from target_restapi.errors import SettingsError
from target_restapi.output.redact import Redactor, redact_url
from target_restapi.shaping.bodies import encode_json


class ErrorFile:
    """Appends failed records as JSON lines, with secrets redacted."""

    def __init__(self, path: str, redactor: Redactor) -> None:
        if "://" in path:  # open() would make a local folder named after the URL
            raise SettingsError(
                f"setting 'error_file_path' is {redact_url(path)}, a URL; the error file is "
                "local: give a local file path"
            )
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run)
        except OSError as exc:  # its text would quote the path, password and all
            raise SettingsError(
                f"setting 'error_file_path': cannot create or open {redact_url(path)} "
                f"({exc.strerror}); give a writable local file path"
            ) from None
        self._redact = redactor.text
        self._lock = threading.Lock()

    def write(self, failure: dict[str, Any], records: Iterable[bytes]) -> None:
        """One line per record, each with the failure's details (secrets masked in them).

        Records are written as received: masking their JSON text could break it.
        """
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        details = {
            key: self._redact(value) if isinstance(value, str) else value
            for key, value in failure.items()
        }
        lines = [
            encode_json({**details, "time": stamp, "record": msgspec.Raw(record)}).decode()
            for record in records
        ]
        with self._lock:
            self._file.writelines(line + "\n" for line in lines)
            self._file.flush()

    def close(self) -> None:
        """Close the file at the end of the run."""
        self._file.close()
