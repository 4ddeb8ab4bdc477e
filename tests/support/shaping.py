"""Helpers for the payload-shaping tests: expected texts, and parsing what a server got.

The expectations are written from the feature's description, not from the
target's code: a value's text in CSV and form bodies is empty for null, `true`/`false`
for booleans, the number's digits as received, and JSON text for objects and arrays.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from werkzeug import Request

from support.run import Seen, data_file

MODES = ("single", "batch", "one")
FORM_FORMATS = ("form_data", "urlencoded")


def singer_messages(name: str) -> list[dict]:
    """Every message of a tests/data_files input, numbers with a fraction as Decimal."""
    lines = data_file(name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line, parse_float=Decimal) for line in lines if line.strip()]


def records_of(name: str, stream: str) -> list[dict]:
    """The records of one stream of an input file, in input order."""
    return [
        m["record"]
        for m in singer_messages(name)
        if m["type"] == "RECORD" and m["stream"] == stream
    ]


def columns_of(name: str, stream: str) -> list[str]:
    """The SCHEMA's properties of one stream, in their order."""
    for message in singer_messages(name):
        if message["type"] == "SCHEMA" and message["stream"] == stream:
            return list(message["schema"]["properties"])
    raise AssertionError(f"no SCHEMA for {stream} in {name}")


def text_of(value: Any) -> str:
    """A scalar's text in a CSV or form field."""
    assert not isinstance(value, dict | list), "compare nested values with same_text"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def same_text(text: str, value: Any) -> bool:
    """Whether a CSV cell or form value is the text of `value` (objects as JSON text)."""
    if isinstance(value, dict | list):
        try:
            return json.loads(text, parse_float=Decimal) == value
        except ValueError:
            return False
    return text == text_of(value)


def flatten(head: str, value: Any) -> list[tuple[str, Any]]:
    """Bracket keys of every leaf: `address[city]`, `tags[0]`; leaves stay values."""
    if isinstance(value, dict):
        return [pair for key, inner in value.items() for pair in flatten(f"{head}[{key}]", inner)]
    if isinstance(value, list):
        return [pair for i, inner in enumerate(value) for pair in flatten(f"{head}[{i}]", inner)]
    return [(head, value)]


def form_leaves(record: dict, prefix: str | None = None) -> list[tuple[str, str]]:
    """The (key, text) pairs a form body holds for a record, optionally under `prefix`."""
    pairs = []
    for key, value in record.items():
        head = key if prefix is None else f"{prefix}[{key}]"
        pairs += [(k, text_of(v)) for k, v in flatten(head, value)]
    return pairs


def form_pairs(seen: Seen) -> list[tuple[str, str]]:
    """The form fields of a received body, parsed by werkzeug as the server would."""
    content_type = seen.header("Content-Type")
    assert content_type, "the request had no Content-Type"
    request = Request.from_values(
        method="POST",
        input_stream=io.BytesIO(seen.body),
        content_length=len(seen.body),
        content_type=content_type,
    )
    request.max_form_memory_size = None
    form = request.form
    assert not request.files, f"unexpected file parts: {list(request.files)}"
    pairs = list(form.items(multi=True))
    assert len(pairs) == len(set(key for key, _ in pairs)), f"repeated keys in {pairs}"
    return pairs


def csv_rows(seen: Seen) -> list[list[str]]:
    """The rows of a received CSV body, parsed with the csv module (RFC 4180)."""
    return list(csv.reader(io.StringIO(seen.body.decode("utf-8"), newline="")))


def json_records(bodies: list, *, mode: str, nested: str | None = None) -> list:
    """The record objects of every JSON body, checking each body's outer shape."""
    records = []
    for body in bodies:
        if nested is not None:
            assert isinstance(body, dict) and isinstance(body.get(nested), list), body
            items = body[nested]
            if mode == "single":
                assert len(items) == 1, body
        elif mode == "single":
            assert isinstance(body, dict), body
            items = [body]
        else:
            assert isinstance(body, list), body
            items = body
        records += items
    return records


def mode_settings(mode: str, batch_size: int = 3) -> dict:
    """The request_mode settings of a test run."""
    return {"request_mode": mode, "batch_size": batch_size}


def check_request_count(count: int, *, mode: str, records: int, batch_size: int = 3) -> None:
    """One request per record, at least enough batches, or exactly one request."""
    if mode == "single":
        assert count == records, count
    elif mode == "one":
        assert count == 1, count
    else:
        assert count >= -(-records // batch_size), count
        assert count < records, count


def stderr_line_with(stderr: str, needle: str) -> str:
    """The stderr line that mentions `needle` (the target writes one line per error)."""
    lines = [line for line in stderr.splitlines() if needle in line]
    assert lines, f"no stderr line mentions {needle!r}:\n{stderr}"
    return lines[-1]


def assert_refused_at_start(result, recorder, *words: str) -> None:
    """The run stopped before sending anything, with an error holding every one of `words`."""
    assert result.returncode != 0
    assert recorder.requests == []
    for word in words:
        assert word in result.stderr, result.stderr
