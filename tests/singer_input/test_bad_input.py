"""Bad input stops the run with a clear error, and nothing read before it is lost.

Every case feeds the same good start (records 1..3, a STATE after record 2), then one
bad line 6, then a good record that must never be sent. Records read before the bad
line are delivered first, even from a half-filled batch, and the STATE before it is out.
"""

from __future__ import annotations

import json
import re

import pytest
from support.run import data_file, run_target
from werkzeug import Response

SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "team": {"type": ["string", "null"]},
        },
    },
    "key_properties": ["id"],
}
BAD_LINE = 6


def record(**values):
    return {"type": "RECORD", "stream": "users", "record": values}


def line(message) -> bytes:
    return json.dumps(message).encode()


GOOD_START = [
    line(SCHEMA),
    line(record(id=1, name="Ada", team="a")),
    line(record(id=2, name="Grace", team="a")),
    line({"type": "STATE", "value": {"n": 2}}),
    line(record(id=3, name="Katherine", team="a")),
]
GOOD_END = [
    line(record(id=4, name="Dorothy", team="a")),
    line({"type": "STATE", "value": {"n": 4}}),
]

# case id: (bad line, words the error must hold: what is wrong and where to fix it)
BAD_LINES = {
    "malformed_json": (
        b'{"type": "RECORD", "stream": "users", "record": {"id": 9',
        ["JSON", "tap"],
    ),
    "unknown_type": (b'{"type": "SURPRISE", "stream": "users"}', ["SURPRISE", "tap"]),
    "record_without_record": (b'{"type": "RECORD", "stream": "users"}', ["record", "tap"]),
    "state_without_value": (b'{"type": "STATE"}', ["value", "tap"]),
    "record_before_schema": (
        b'{"type": "RECORD", "stream": "orders", "record": {"id": 9}}',
        ["orders", "schema"],
    ),
    "schema_validation": (line(record(id="nine", name="x", team="a")), ["users", "id", "fix"]),
    "missing_key_property": (line(record(name="x", team="a")), ["users", "id", "key", "fix"]),
    "invalid_utf8": (
        b'{"type": "RECORD", "stream": "users", "record": {"id": 9, "name": "\xff\xfe"}}',
        ["UTF-8", "tap"],
    ),
    "url_value_null": (line(record(id=9, name="x", team=None)), ["team", "null", "template"]),
    "url_value_missing": (line(record(id=9, name="x")), ["team", "missing", "template"]),
}
MODES = {
    "single": ({"request_mode": "single"}, [[1], [2], [3]]),
    # Records 1 and 2 fill a batch; record 3's partial batch is sent before the run stops.
    "batch": ({"request_mode": "batch", "batch_size": 2}, [[1, 2], [3]]),
    "one": ({"request_mode": "one"}, [[1, 2, 3]]),
}
CASES = [(case, "batch") for case in BAD_LINES] + [
    (case, mode)
    for case in ("malformed_json", "schema_validation", "url_value_null")
    for mode in ("single", "one")
]


def sent_ids(recorder):
    ids = []
    for seen in recorder.requests:
        body = seen.json()
        ids.append([r["id"] for r in body] if isinstance(body, list) else [body["id"]])
    return ids


def feed(*lines: bytes) -> bytes:
    return b"".join(one + b"\n" for one in lines)


@pytest.mark.parametrize(("case", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_bad_line_stops_the_run_after_delivering_what_came_before(
    recorder, httpserver, tmp_path, case, mode
):
    bad, words = BAD_LINES[case]
    settings, expected = MODES[mode]
    config = {"url": httpserver.url_for("/teams/#{team}/users"), **settings}
    result = run_target(config, feed(*GOOD_START, bad, *GOOD_END), tmp_path)
    assert result.returncode != 0
    errors = [e for e in result.stderr.splitlines() if re.search(rf"\bline {BAD_LINE}\b", e)]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    # The good records before the bad line reached the server; nothing after it did.
    assert sent_ids(recorder) == expected
    assert {seen.path for seen in recorder.requests} == {"/teams/a/users"}
    # The STATE read before the bad line was emitted (its records were delivered).
    assert result.states == [{"n": 2}]


def test_schema_validation_error_names_the_field(recorder, httpserver, tmp_path):
    bad = line(record(id=9, name=12345, team="a"))
    config = {"url": httpserver.url_for("/teams/#{team}/users")}
    result = run_target(config, feed(*GOOD_START, bad), tmp_path)
    assert result.returncode != 0
    (error,) = [e for e in result.stderr.splitlines() if "line 6" in e]
    assert "users" in error
    assert re.search(r"\bname\b", error), error


def test_delivery_failure_while_flushing_before_the_bad_line_is_reported_too(
    recorder, httpserver, tmp_path
):
    recorder.respond = lambda seen: Response("rejected by the server", status=400)
    config = {"url": httpserver.url_for("/teams/#{team}/users"), "request_mode": "one"}
    bad, _ = BAD_LINES["malformed_json"]
    result = run_target(config, feed(*GOOD_START, bad), tmp_path)
    assert result.returncode != 0
    assert sent_ids(recorder) == [[1, 2, 3]]
    assert any("rejected by the server" in e for e in result.stderr.splitlines())
    assert re.search(rf"\bline {BAD_LINE}\b", result.stderr), result.stderr
    assert result.states == []  # nothing delivered, so no STATE
    assert "Traceback" not in result.stderr


# Large but good input


TEN_MB = 10 * 1024 * 1024


def big_input():
    big = record(id=1, name="Big", team="a")
    big["record"]["blob"] = "".join(chr(0x61 + i % 26) for i in range(997)) * (TEN_MB // 997 + 1)
    schema = json.loads(json.dumps(SCHEMA))
    schema["schema"]["properties"]["blob"] = {"type": "string"}
    text = feed(line(schema), line(big), line({"type": "STATE", "value": {"n": 1}}))
    return text, big["record"]


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_ten_megabyte_record_is_delivered_intact(recorder, httpserver, tmp_path, mode):
    text, sent = big_input()
    assert len(sent["blob"]) >= TEN_MB
    config = {"url": httpserver.url_for("/teams/#{team}/users"), **MODES[mode][0]}
    result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (seen,) = recorder.requests
    body = seen.json()
    received = body if mode == "single" else body[0]
    assert received == sent
    assert result.states == [{"n": 1}]


def test_ten_megabyte_batch_is_resent_intact_on_retry(recorder, httpserver, tmp_path):
    """In `one` mode a body this large is spooled to disk; a retry resends all of it."""
    answers = [503]
    recorder.respond = lambda seen: Response("busy", status=answers.pop()) if answers else None
    text, sent = big_input()
    config = {
        "url": httpserver.url_for("/teams/#{team}/users"),
        "request_mode": "one",
        "max_backoff_seconds": 0.05,
    }
    result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    first, second = recorder.requests
    assert first.body == second.body
    assert second.json() == [sent]


def test_last_line_without_newline_is_read(recorder, httpserver, tmp_path):
    text = feed(*GOOD_START) + GOOD_END[0]  # record 4, no final newline
    result = run_target({"url": httpserver.url_for("/teams/#{team}/users")}, text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [[1], [2], [3], [4]]


def test_big_and_precise_numbers_are_not_refused(recorder, httpserver, tmp_path):
    """Integers past 64 bits are still integers; both are sent exactly as read."""
    raws = [
        '{"id": 123456789012345678901234567890, "name": "Ada", "team": "a"}',
        '{"id": -9223372036854775809, "name": "Grace", "team": "a"}',
    ]
    records = [f'{{"type": "RECORD", "stream": "users", "record": {r}}}'.encode() for r in raws]
    text = feed(line(SCHEMA), *records)
    result = run_target({"url": httpserver.url_for("/teams/#{team}/users")}, text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.body.decode() for seen in recorder.requests] == raws


# Line numbers: what the error names is the line of the input file, counted as the tap wrote it


def only_error_naming_line(stderr: str, number: int) -> str:
    """The one log line that names input line `number`; a traceback fails the test."""
    errors = [e for e in stderr.splitlines() if re.search(rf"\bline {number}\b", e)]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_line_numbers_count_blank_lines(recorder, httpserver, tmp_path):
    text = data_file("unknown_type.singer").read_text().replace("\n", "\n\n", 1)
    result = run_target({"url": httpserver.url_for("/in")}, text, tmp_path)
    assert result.returncode == 1
    assert "SURPRISE" in only_error_naming_line(result.stderr, 4)


def test_record_that_is_not_an_object_names_the_line(recorder, httpserver, tmp_path):
    lines = data_file("users.singer").read_text().splitlines()[:2]
    lines.append('{"type": "RECORD", "stream": "users", "record": [1, 2]}')
    result = run_target({"url": httpserver.url_for("/in")}, "\n".join(lines) + "\n", tmp_path)
    assert result.returncode == 1
    error = only_error_naming_line(result.stderr, 3)
    assert "a record of stream 'users' is not a JSON object" in error
    assert "fix the tap's output" in error
