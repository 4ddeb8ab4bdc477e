"""Helpers for the response-file tests: read entries back in every format, run in-process.

No tests here. The response file is public output, so it is read back only through its
documented shape (jsonl lines, a CSV with a header row, one JSON array), never through
the target's own encoders.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
from werkzeug import Response

from support.run import data_file

FORMATS = ("jsonl", "csv", "json")
MODES = ("single", "batch", "one")

# 5 orders keyed by (region, id); a STATE after the last one.
ORDERS = data_file("responses_orders.singer")
ORDER_KEYS = {
    1: {"region": "eu", "id": 1},
    2: {"region": "eu", "id": 2},
    3: {"region": "us", "id": 3},
    4: {"region": "us", "id": 4},
    5: {"region": "apac", "id": 5},
}
ORDERS_STATE = {"bookmarks": {"orders": {"id": 5}}}

# The columns a CSV response file must have (its header row names them).
REQUIRED_COLUMNS = {
    "stream",
    "request",
    "time",
    "method",
    "url",
    "status",
    "elapsed_ms",
    "error",
    "headers",
    "body",
    "records",
    "keys",
    "first_keys",
    "last_keys",
}
KEPT_HEADERS = {"content-type", "location", "x-ratelimit-remaining", "ratelimit-limit"}
KEPT_HEADERS |= {"retry-after", "x-rate-limit-reset"}
COOKIE = "session-cookie-value-Qw9"


def ids_of(seen) -> list[int]:
    """The ids of the records a request carried (an object, or an array of them)."""
    body = seen.json()
    return [r["id"] for r in body] if isinstance(body, list) else [body["id"]]


def answer_with_ids(seen) -> Response:
    """A JSON answer naming the ids it got, with headers that are kept and some that are not."""
    ids = ids_of(seen)
    return Response(
        json.dumps({"received": ids}),
        status=201,
        content_type="application/json",
        headers={
            "Location": f"/orders/{ids[0]}",
            "X-RateLimit-Remaining": "42",
            "RateLimit-Limit": "100",
            "X-Rate-Limit-Reset": "60",
            "Retry-After": "0",
            "Set-Cookie": f"session={COOKIE}; HttpOnly",
            "X-Request-Id": "not-kept",
        },
    )


# Reading response files


def _cell(column: str, value: str):
    """A CSV cell back to the value an entry would hold in the JSON formats."""
    if value == "":
        return None
    if column in ("request", "status", "records", "attempts"):
        return int(value)
    if column == "elapsed_ms":
        return float(value)
    if column in ("headers", "keys", "first_keys", "last_keys"):
        return json.loads(value)
    if column == "body" and value[:1] in ("{", "["):
        return json.loads(value)
    return value


def parse_entries(text: str, fmt: str, *, partial: bool = False) -> list[dict]:
    """Every entry of a response file's text; `partial`: a file still being written."""
    if fmt == "jsonl":
        assert text == "" or text.endswith("\n"), "a jsonl file ends with a complete line"
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "json":
        if partial and not text.rstrip().endswith("]"):
            text += "]"  # still open: the closing bracket comes at the end of the run
        entries = json.loads(text)
        assert isinstance(entries, list), "a json response file is one array"
        return entries
    assert fmt == "csv"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, data = rows[0], rows[1:]
    assert set(header) >= REQUIRED_COLUMNS, f"CSV header lacks columns: {header}"
    for row in data:
        assert len(row) == len(header), f"CSV row has {len(row)} cells, header {len(header)}"
    return [{c: _cell(c, v) for c, v in zip(header, row, strict=True)} for row in data]


def local_files(folder: Path) -> list[Path]:
    """Every file under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def only_local_file(folder: Path, stream: str = "orders", fmt: str = "jsonl") -> Path:
    """The one response file of a stream in a local folder, its name checked."""
    files = [p for p in local_files(folder) if p.name.startswith(f"{stream}-")]
    assert len(files) == 1, f"expected one file for {stream}: {local_files(folder)}"
    assert files[0].parent == folder, "response files go straight into the folder"
    check_file_name(files[0].name, stream, fmt)
    return files[0]


def read_local(folder: Path, stream: str = "orders", fmt: str = "jsonl") -> list[dict]:
    return parse_entries(only_local_file(folder, stream, fmt).read_bytes().decode(), fmt)


def memory_folder() -> str:
    """A fresh memory:// folder (the memory filesystem is shared by the whole process)."""
    return f"memory://responses-{uuid.uuid4().hex}/out"


def memory_files(url: str) -> dict[str, str]:
    """File name -> text of every file in a memory:// folder."""
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://")
    if not fs.exists(root):
        return {}
    return {path.rsplit("/", 1)[1]: fs.cat_file(path).decode("utf-8") for path in fs.find(root)}


def read_memory(url: str, stream: str = "orders", fmt: str = "jsonl") -> list[dict]:
    files = {n: t for n, t in memory_files(url).items() if n.startswith(f"{stream}-")}
    assert len(files) == 1, f"expected one file for {stream}: {sorted(memory_files(url))}"
    [(name, text)] = files.items()
    check_file_name(name, stream, fmt)
    return parse_entries(text, fmt)


FILE_NAME = re.compile(r"^(?P<stream>.+)-(?P<stamp>\d{8}T\d{6}(?:\.\d+)?Z)\.(?P<ext>\w+)$")


def check_file_name(name: str, stream: str, fmt: str) -> datetime:
    """`<safe stream>-<UTC timestamp>.<ext>`; returns the timestamp."""
    match = FILE_NAME.match(name)
    assert match, f"file name {name!r} is not <stream>-<UTC timestamp>.<ext>"
    assert match["stream"] == stream
    assert match["ext"] == fmt
    stamp = match["stamp"]
    pattern = "%Y%m%dT%H%M%S.%fZ" if "." in stamp else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(stamp, pattern).replace(tzinfo=UTC)


def assert_recent(when: datetime, started: datetime) -> None:
    """A UTC time taken during the run (one second of slack for rounding)."""
    assert started - timedelta(seconds=1) <= when <= datetime.now(UTC) + timedelta(seconds=1)


# Running in-process (memory:// lives in the target's own process)


def run_in_process(monkeypatch, config: dict, data: bytes | Path) -> None:
    """Run the target on `data` in this process; raises what the run raises."""
    from target_restapi.target import TargetRestApi

    for name in [n for n in os.environ if n.startswith("TARGET_RESTAPI_")]:
        monkeypatch.delenv(name)
    if isinstance(data, Path):
        data = data.read_bytes()
    # The target takes over SIGINT/SIGTERM; give them back to pytest afterwards.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The SDK fills defaults into the dict it is given: hand it a copy.
        target = TargetRestApi(config=copy.deepcopy(config))
        target.listen(io.BytesIO(data))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
