"""Bad Singer input stops the run with the number of the line at fault."""

import re

import pytest
from support.run import data_file, run_target


@pytest.mark.parametrize(
    ("file", "line", "words"),
    [
        ("malformed_json.singer", 3, ["JSON"]),
        ("record_before_schema.singer", 3, ["orders"]),
        ("unknown_type.singer", 3, ["SURPRISE"]),
    ],
)
def test_bad_input_line_stops_the_run_naming_the_line(
    recorder, httpserver, tmp_path, file, line, words
):
    result = run_target({"url": httpserver.url_for("/in")}, data_file(file), tmp_path)
    assert result.returncode != 0
    assert re.search(rf"\bline {line}\b", result.stderr), result.stderr
    for word in words:
        assert word in result.stderr
    # Records before the bad line were delivered, nothing after it.
    assert [seen.json()["id"] for seen in recorder.requests] == [1]
    assert "Traceback" not in result.stderr


def test_line_numbers_count_blank_lines(recorder, httpserver, tmp_path):
    text = data_file("unknown_type.singer").read_text().replace("\n", "\n\n", 1)
    result = run_target({"url": httpserver.url_for("/in")}, text, tmp_path)
    assert result.returncode != 0
    assert re.search(r"\bline 4\b", result.stderr), result.stderr


def test_record_that_is_not_an_object_names_the_line(recorder, httpserver, tmp_path):
    lines = data_file("users.singer").read_text().splitlines()[:2]
    lines.append('{"type": "RECORD", "stream": "users", "record": [1, 2]}')
    result = run_target({"url": httpserver.url_for("/in")}, "\n".join(lines) + "\n", tmp_path)
    assert result.returncode != 0
    assert re.search(r"\bline 3\b", result.stderr), result.stderr
    assert "users" in result.stderr


def test_invalid_utf8_names_the_line(recorder, httpserver, tmp_path):
    lines = data_file("users.singer").read_bytes().splitlines()[:2]
    lines.append(b'{"type": "RECORD", "stream": "users", "record": {"id": 3, "name": "\xff"}}')
    result = run_target({"url": httpserver.url_for("/in")}, b"\n".join(lines) + b"\n", tmp_path)
    assert result.returncode != 0
    assert re.search(r"\bline 3\b", result.stderr), result.stderr
