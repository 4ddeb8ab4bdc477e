"""compression: gzip compresses every request body and says so in Content-Encoding.

Each case sends the same records on two streams in one run, one of them with
`compression: gzip`, and compares request by request: the compressed body, decompressed,
is exactly what the uncompressed stream sent; only the compressed one has Content-Encoding.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest
from support.run import Seen, run_target

SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "note": {"type": ["string", "null"]},
        },
    },
    "key_properties": ["id"],
}
NOTES = ["plain", "with, comma", 'with "quotes"', "two\nlines", None, "ünïcödé", "x" * 200]


def people_input(n: int = 7, stream: str = "people") -> str:
    lines = [json.dumps({**SCHEMA, "stream": stream})]
    for i in range(1, n + 1):
        record = {"id": i, "name": f"person {i}", "note": NOTES[(i - 1) % len(NOTES)]}
        lines.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
    lines.append(json.dumps({"type": "STATE", "value": {"done": n}}))
    return "\n".join(lines) + "\n"


def boundary_of(seen: Seen) -> str | None:
    match = re.search(r"boundary=([^;\s]+)", seen.header("Content-Type") or "")
    return match.group(1) if match else None


def comparable(seen: Seen, body: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) with a multipart boundary (random per request) made fixed."""
    content_type = seen.header("Content-Type") or ""
    boundary = boundary_of(seen)
    if boundary:
        content_type = content_type.replace(boundary, "BOUNDARY")
        body = body.replace(boundary.encode(), b"BOUNDARY")
    return content_type, body


def run_both(recorder, tmp_path, config: dict, n: int = 7):
    """Requests of stream `plain` (no compression) and of stream `zipped` (gzip).

    Both streams get the same records and settings in one run; only `zipped` has
    `compression: gzip` (and its own URL), as per-stream overrides.
    """
    zipped_url = config["url"].replace("/plain", "/zipped")
    config = {**config, "streams": {"zipped": {"url": zipped_url, "compression": "gzip"}}}
    result = run_target(config, people_input(n, "plain") + people_input(n, "zipped"), tmp_path)
    assert result.returncode == 0, result.stderr
    plain = [seen for seen in recorder.requests if seen.path.startswith("/plain")]
    zipped = [seen for seen in recorder.requests if seen.path.startswith("/zipped")]
    return plain, zipped


CASES = [
    (mode, body_format)
    for mode in ("single", "batch", "one")
    for body_format in ("json", "csv", "urlencoded", "form_data")
]


@pytest.mark.parametrize(("mode", "body_format"), CASES)
def test_gzip_body_decompresses_to_exactly_the_uncompressed_body(
    recorder, httpserver, tmp_path, mode, body_format
):
    config = {
        "url": httpserver.url_for("/plain"),
        "request_mode": mode,
        "batch_size": 3,
        "body_format": body_format,
    }
    plain, zipped = run_both(recorder, tmp_path, config)

    expected_requests = {"single": 7, "batch": 3, "one": 1}[mode]
    assert len(plain) == len(zipped) == expected_requests
    for before, after in zip(plain, zipped, strict=True):
        assert before.header("Content-Encoding") is None
        assert after.header("Content-Encoding") == "gzip"
        assert after.body[:2] == b"\x1f\x8b", "the body on the wire is not gzip data"
        assert after.body != before.body
        assert after.method == before.method
        assert comparable(after, gzip.decompress(after.body)) == comparable(before, before.body)


def test_gzip_json_batch_carries_the_records_in_order(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/people"),
        "request_mode": "batch",
        "batch_size": 4,
        "compression": "gzip",
    }
    result = run_target(config, people_input(10), tmp_path)

    assert result.returncode == 0, result.stderr
    ids = [r["id"] for seen in recorder.requests for r in json.loads(gzip.decompress(seen.body))]
    assert ids == list(range(1, 11))
    assert all(seen.header("Content-Type") == "application/json" for seen in recorder.requests)
    assert all(seen.header("Content-Encoding") == "gzip" for seen in recorder.requests)


def test_without_the_setting_bodies_are_sent_as_is(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/people"), "request_mode": "batch", "batch_size": 10}
    result = run_target(config, people_input(3), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert seen.header("Content-Encoding") is None
    assert [r["id"] for r in seen.json()] == [1, 2, 3]


def test_compression_none_sends_bodies_as_is(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/people"), "compression": "none"}
    result = run_target(config, people_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [seen.header("Content-Encoding") for seen in recorder.requests] == [None, None]
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]


def test_compression_per_stream_override(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/#{id}"),
        "streams": {"zipped": {"url": httpserver.url_for("/z/#{id}"), "compression": "gzip"}},
    }
    input_text = people_input(2, "plain") + people_input(2, "zipped")
    result = run_target(config, input_text, tmp_path)

    assert result.returncode == 0, result.stderr
    by_path = {seen.path: seen for seen in recorder.requests}
    assert set(by_path) == {"/1", "/2", "/z/1", "/z/2"}
    for path in ("/1", "/2"):
        assert by_path[path].header("Content-Encoding") is None
    for path in ("/z/1", "/z/2"):
        assert by_path[path].header("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(by_path[path].body))["id"] == int(path[-1])


def test_gzip_get_requests_have_no_body_and_no_content_encoding(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/people/#{id}"), "method": "GET", "compression": "gzip"}
    result = run_target(config, people_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [seen.path for seen in recorder.requests] == ["/people/1", "/people/2"]
    for seen in recorder.requests:
        assert seen.body == b""
        assert seen.header("Content-Encoding") is None


def test_unknown_compression_is_refused(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/people"), "compression": "brotli"}
    result = run_target(config, people_input(1), tmp_path)

    assert result.returncode != 0
    assert "compression" in result.stderr
    assert recorder.requests == []
