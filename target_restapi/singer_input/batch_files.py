"""The records of a BATCH message: JSON lines read from its manifest's files, streamed.

The SDK's BATCH extension names files (`jsonl`, gzip or not) that hold one record per
line. They are read a line at a time, never whole, so a file may be larger than memory.
Where the files live follows the SDK: the manifest's URL, or, when `batch_config` gives a
storage root, the file's name under that root.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import msgspec
from upath import UPath

from target_restapi.errors import InputError

COMPRESSIONS = (None, "none", "gzip")
_raw = msgspec.json.Decoder(msgspec.Raw)


def batch_lines(
    message: Mapping[str, Any], batch_config: Mapping[str, Any] | None
) -> Iterator[tuple[str, bytes]]:
    """(where, record JSON) for each record of the BATCH message's files, in order.

    The message is checked at once; `where` names the file and line for error messages.
    A file that cannot be opened or decoded raises InputError naming it, once the
    records before the fault were given.
    """
    encoding = message.get("encoding")
    manifest = message.get("manifest")
    if (
        not isinstance(message.get("stream"), str)
        or not isinstance(encoding, Mapping)
        or not isinstance(manifest, list)
    ):
        raise InputError(
            "BATCH message needs 'stream', 'encoding' and 'manifest'; fix the tap's output"
        )
    if encoding.get("format") != "jsonl" or encoding.get("compression") not in COMPRESSIONS:
        raise InputError(
            f"BATCH encoding {dict(encoding)} is not supported: only format 'jsonl', "
            "with compression 'gzip' or none; set the tap's batch_config to that"
        )
    root = ((batch_config or {}).get("storage") or {}).get("root")
    return _lines(manifest, root, gzipped=encoding.get("compression") == "gzip")


def _lines(manifest: list, root: str | None, *, gzipped: bool) -> Iterator[tuple[str, bytes]]:
    for entry in map(str, manifest):
        name = PurePosixPath(urlsplit(entry).path).name
        yield from _file_lines(entry, f"{root.rstrip('/')}/{name}" if root else entry, gzipped)


def _open(location: str) -> IO[bytes]:
    """A local path or file:// URL opened as a plain file (pipes too); others by fsspec."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return open(url2pathname(parts.path), "rb")
    if len(parts.scheme) <= 1:  # none, or a Windows drive letter
        return open(location, "rb")
    return UPath(location).open("rb")


def _file_lines(name: str, location: str, gzipped: bool) -> Iterator[tuple[str, bytes]]:
    where = f"BATCH file '{name}'"
    with ExitStack() as files:
        try:
            file: IO[bytes] | gzip.GzipFile = files.enter_context(_open(location))
            if gzipped:
                file = files.enter_context(gzip.GzipFile(fileobj=file))
        except Exception as exc:  # missing, unreadable, or an fsspec protocol not installed
            raise InputError(f"{where} cannot be read ({exc}); check the BATCH files") from None
        number = 0
        lines = iter(file)
        while True:
            try:
                line = next(lines, None)
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError(
                    f"{where} line {number + 1}: cannot be decoded ({exc}); "
                    "the file must be JSON lines" + (", gzip-compressed" if gzipped else "")
                ) from None
            if line is None:
                return
            number += 1
            if line.isspace():
                continue
            try:
                _raw.decode(line)
            except msgspec.DecodeError as exc:
                raise InputError(
                    f"{where} line {number}: not valid JSON ({exc}); one record per line"
                ) from None
            yield f"{where} line {number}", line.strip()
