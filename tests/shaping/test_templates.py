"""`#{field}` in `url` and header values, end to end: schema check, encoding, refusals."""

import re

import pytest
from support.run import data_file, run_target


def line_number_in(stderr: str, number: int) -> bool:
    return re.search(rf"\bline {number}\b", stderr) is not None


def refusal(result) -> str:
    """The one error line of a run the target refused (exit 1, no traceback)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "| ERROR " in line]
    return line


NOT_IN_SCHEMA = "which the SCHEMA does not declare; fix the settings or the tap's schema"


# Checked against the SCHEMA


@pytest.mark.parametrize(
    ("settings", "setting_name"),
    [
        ({"url": "/items/#{nope}"}, "url"),
        ({"url": "/items/#{group.nope}"}, "url"),
        ({"url": "/items", "headers": {"X-Tenant": "#{nope}"}}, "headers.X-Tenant"),
    ],
)
def test_field_missing_from_schema_stops_the_run_before_any_request(
    recorder, httpserver, tmp_path, settings, setting_name
):
    config = {**settings, "url": httpserver.url_for(settings["url"])}
    result = run_target(config, data_file("path_values.singer"), tmp_path)
    line = refusal(result)
    assert recorder.requests == []
    assert f"input line 1: stream 'items': setting '{setting_name}' uses #{{" in line
    assert "nope}, " + NOT_IN_SCHEMA in line


@pytest.mark.parametrize(
    "settings",
    [{"url": "/t/#{tenant}"}, {"url": "/t", "headers": {"X-Tenant": "#{tenant}"}}],
    ids=["url", "header"],
)
def test_schema_check_applies_even_when_records_hold_the_field(
    recorder, httpserver, tmp_path, settings
):
    # The records carry `tenant`, so only a check against the SCHEMA can refuse the run.
    config = {**settings, "url": httpserver.url_for(settings["url"])}
    result = run_target(config, data_file("schema_lacks_field.singer"), tmp_path)
    line = refusal(result)
    assert recorder.requests == []
    setting = "headers.X-Tenant" if "headers" in settings else "url"
    assert f"stream 'events': setting '{setting}' uses #{{tenant}}, {NOT_IN_SCHEMA}" in line


def test_schema_check_runs_again_when_a_new_schema_arrives(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/t/#{tenant}")}
    result = run_target(config, data_file("schema_change_drops_field.singer"), tmp_path)
    assert result.returncode == 1, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == ["/t/a"]
    assert result.states == [{"after": 1}]
    assert line_number_in(result.stderr, 4)
    assert "tenant" in result.stderr


def test_fields_the_schema_declares_are_accepted(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/items/#{id}"),
        "headers": {"X-Group": "#{group.code}"},
    }
    result = run_target(config, data_file("path_values.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.header("X-Group") for seen in recorder.requests] == ["g/1", "g 2", "g3"]


# Percent-encoding of URL values


def test_url_values_are_percent_encoded_and_stay_in_their_segment(recorder, httpserver, tmp_path):
    result = run_target(
        {"url": httpserver.url_for("/items/#{id}")}, data_file("path_values.singer"), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == [
        "/items/..%2Fadmin%3Fx%3D1",
        "/items/a%20b%23c%25d",
        "/items/plain",
    ]


def test_url_values_in_the_query_are_percent_encoded(recorder, httpserver, tmp_path):
    url = httpserver.url_for("/items") + "?id=#{id}&group=#{group.code}"
    result = run_target({"url": url}, data_file("path_values.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == [
        "/items?id=..%2Fadmin%3Fx%3D1&group=g%2F1",
        "/items?id=a%20b%23c%25d&group=g%202",
        "/items?id=plain&group=g3",
    ]


# Line breaks in header values


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_header_value_with_crlf_from_a_record_is_refused(recorder, httpserver, tmp_path, mode):
    config = {
        "url": httpserver.url_for("/items"),
        "headers": {"X-Token": "#{token}"},
        "request_mode": mode,
        "batch_size": 1,
    }
    result = run_target(config, data_file("header_values.singer"), tmp_path)
    assert result.returncode == 1, result.stderr
    assert all(seen.header("X-Injected") is None for seen in recorder.requests)
    assert [seen.header("X-Token") for seen in recorder.requests] == ["abc"]
    # Refused by the target itself, naming the header and the input line (not a transport error).
    assert "X-Token" in result.stderr
    assert "line break" in result.stderr
    assert line_number_in(result.stderr, 3)


def test_header_value_with_lf_only_is_refused(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/items"), "headers": {"X-Token": "#{token}"}}
    result = run_target(config, data_file("header_lf_value.singer"), tmp_path)
    line = refusal(result)
    assert recorder.requests == []
    assert "stream 'items': header 'X-Token' has a line break (CR or LF)" in line


def test_header_value_with_crlf_is_never_sent_even_when_failures_are_tolerated(
    recorder, httpserver, tmp_path
):
    config = {
        "url": httpserver.url_for("/items"),
        "headers": {"X-Token": "#{token}"},
        "fail_on_error": False,
    }
    result = run_target(config, data_file("header_values.singer"), tmp_path)
    assert [seen.header("X-Token") for seen in recorder.requests] == ["abc", "def"]
    assert all(seen.header("X-Injected") is None for seen in recorder.requests)
    assert "X-Token" in result.stderr


# Null and missing values in URL placeholders


@pytest.mark.parametrize(
    ("file", "word"),
    [("url_null_value.singer", "null"), ("url_missing_value.singer", "missing")],
)
def test_null_or_missing_url_value_is_a_record_error_naming_the_line(
    recorder, httpserver, tmp_path, file, word
):
    result = run_target({"url": httpserver.url_for("/items/#{id}")}, data_file(file), tmp_path)
    assert result.returncode == 1, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == ["/items/first"]
    assert line_number_in(result.stderr, 3)
    assert word in result.stderr
    assert "'id'" in result.stderr


@pytest.mark.parametrize("file", ["url_null_value.singer", "url_missing_value.singer"])
def test_null_url_value_never_becomes_the_text_none(recorder, httpserver, tmp_path, file):
    config = {"url": httpserver.url_for("/items/#{id}"), "fail_on_error": False}
    result = run_target(config, data_file(file), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == ["/items/first", "/items/third"]
    assert not any("None" in seen.raw_uri for seen in recorder.requests)


@pytest.mark.parametrize("file", ["url_null_value.singer", "url_missing_value.singer"])
def test_tolerated_record_error_still_names_the_line(recorder, httpserver, tmp_path, file):
    """With fail_on_error false the logged record error must still point at the input line."""
    config = {"url": httpserver.url_for("/items/#{id}"), "fail_on_error": False}
    result = run_target(config, data_file(file), tmp_path)
    assert result.returncode == 0, result.stderr
    assert line_number_in(result.stderr, 3), result.stderr
