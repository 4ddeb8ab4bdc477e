"""Text HTTP cannot carry: header values outside what a header holds, Basic credentials.

A templated header value that cannot be sent as it is is a record error (error file, or
one line and exit 1), never a traceback; a static one is refused at start-up. Basic
credentials are sent as UTF-8 (RFC 7617), whatever characters they hold.
"""

from __future__ import annotations

import base64
import http.client
import json

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.record_paths import lines, no_traceback, record, schema, state
from support.run import run_target

from target_restapi.errors import RecordError
from target_restapi.templates import check_header_value, header_value_problem

PROPS = {"id": {"type": "integer"}, "value": {"type": "string"}}
EDGES = ["a", " ", "\t", "é", "ÿ", "~", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "😀", "中"]
VALUES = st.one_of(st.text(max_size=12), st.text(st.sampled_from(EDGES), max_size=6))
UNSENDABLE = {
    "emoji": "ok 😀",
    "line-separator": "a\u2028b",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "escape": "a\x1bb",
    "c1-control": "a\x85b",
    "leading-space": " a",
}


def valued(i: int, value: str) -> dict:
    return {"type": "RECORD", "stream": "users", "record": {"id": i, "value": value}}


def header_config(url: str, **extra) -> dict:
    return {"url": url, "headers": {"X-Value": "#{value}"}, "max_retries": 0, **extra}


def error_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("value", list(UNSENDABLE.values()), ids=list(UNSENDABLE))
def test_an_unsendable_header_value_goes_to_the_error_file_and_the_run_goes_on(
    recorder, httpserver, tmp_path, value
):
    errors = tmp_path / "errors.jsonl"
    config = header_config(
        httpserver.url_for("/u"), fail_on_error=False, error_file_path=str(errors)
    )
    text = lines(schema("users", PROPS), valued(1, "fine"), valued(2, value), valued(3, "é ok"))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    no_traceback(result.stderr)
    assert [seen.header("X-Value") for seen in recorder.requests] == ["fine", "é ok"]
    [failure] = error_lines(errors)
    assert failure["record"]["id"] == 2
    assert "X-Value" in failure["error"] and failure["line"] == 3


@pytest.mark.parametrize("mode", ["single", "batch"])
@pytest.mark.parametrize("value", list(UNSENDABLE.values()), ids=list(UNSENDABLE))
def test_an_unsendable_header_value_stops_the_run_with_one_line(
    recorder, httpserver, tmp_path, value, mode
):
    config = header_config(httpserver.url_for("/u"), request_mode=mode)
    text = lines(schema("users", PROPS), valued(1, "a"), state(1), valued(2, value), state(2))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    no_traceback(result.stderr)
    assert result.states == [{"at": 1}]
    [error] = [line for line in result.stderr.splitlines() if "X-Value" in line]
    assert "input line 4" in error


@pytest.mark.parametrize("where", ["top", "stream"])
@pytest.mark.parametrize("value", ["key 😀", "a\x00", "tab\tend\t", "Bearer \u2028x #{id}"])
def test_a_static_header_that_cannot_be_sent_is_refused_at_start(
    recorder, httpserver, tmp_path, value, where
):
    headers = {"X-Static": value}
    config = {"url": httpserver.url_for("/u")}
    if where == "top":
        config["headers"] = headers
    else:
        config["streams"] = {"users": {"headers": headers}}

    result = run_target(config, lines(schema(), record(1)), tmp_path)

    assert result.returncode == 1
    assert recorder.requests == []
    no_traceback(result.stderr)
    assert "X-Static" in result.stderr and "setting 'headers'" in result.stderr


def test_a_header_name_that_is_not_a_token_is_refused_at_start(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/u"), "headers": {"X Bad:": "v"}}
    result = run_target(config, lines(schema(), record(1)), tmp_path)
    assert result.returncode == 1
    assert recorder.requests == []
    assert "header 'X Bad:' is not a valid header name" in result.stderr
    no_traceback(result.stderr)


@given(VALUES)
@example("\xa0")  # requests refuses leading Unicode white space (found by this test)
@example("a\xa0")
def test_every_header_value_is_sendable_as_is_or_refused(value):
    """The check agrees with what requests and http.client will send without changing it."""
    problem = header_value_problem(value)
    if problem is None:
        encoded = value.encode("latin-1")
        requests.utils.check_header_validity(("X-Value", value))
        assert not http.client._is_illegal_header_value(encoded)
        assert encoded == encoded.strip(b" \t")
    else:
        with pytest.raises(RecordError) as info:
            check_header_value("X-Value", value)
        assert "X-Value" in str(info.value)
        if len(value.strip()) > 3:
            assert value.strip() not in str(info.value)  # a value may be a secret


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(VALUES, min_size=1, max_size=12))
def test_generated_header_values_are_sent_byte_exact_or_are_record_errors(
    recorder, httpserver, tmp_path_factory, values
):
    recorder.requests.clear()
    folder = tmp_path_factory.mktemp("run")
    errors = folder / "errors.jsonl"
    config = header_config(
        httpserver.url_for("/u"), fail_on_error=False, error_file_path=str(errors)
    )
    text = lines(schema("users", PROPS), *(valued(i, v) for i, v in enumerate(values)))

    result = run_target(config, text, folder)

    assert result.returncode == 0, result.stderr
    no_traceback(result.stderr)
    sent = {seen.json()["id"]: seen.header("X-Value") for seen in recorder.requests}
    refused = {entry["record"]["id"]: entry["error"] for entry in error_lines(errors)}
    assert not sent.keys() & refused.keys()
    assert sent.keys() | refused.keys() == set(range(len(values)))
    for i, header in sent.items():
        assert header.encode("latin-1") == values[i].encode("latin-1")  # as the server read it
    for reason in refused.values():
        assert "header 'X-Value'" in reason


@pytest.mark.parametrize(
    ("username", "password"),
    [("zoë", "pässwört"), ("用户", "密码-😀"), ("plain", "a\u2028b")],
    ids=["latin-1", "cjk-emoji", "line-separator"],
)
@pytest.mark.parametrize("spelling", ["settings", "url"])
def test_basic_credentials_are_sent_as_utf8(
    recorder, httpserver, tmp_path, username, password, spelling
):
    url = httpserver.url_for("/u")
    if spelling == "settings":
        config = {"url": url, "auth_type": "basic", "username": username, "password": password}
    else:
        from urllib.parse import quote

        userinfo = f"{quote(username, safe='')}:{quote(password, safe='')}@"
        config = {"url": url.replace("://", f"://{userinfo}", 1)}

    result = run_target(config, lines(schema(), record(1)), tmp_path)

    assert result.returncode == 0, result.stderr
    scheme, _, token = recorder.requests[0].header("Authorization").partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token) == f"{username}:{password}".encode()
    assert password not in result.stderr and token not in result.stderr
