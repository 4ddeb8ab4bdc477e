"""Settings: refused at start-up naming the setting; `streams` overrides merged per stream."""

import pytest
from support.run import data_file, run_target

# The first input line is not JSON: a run that read input before checking its settings
# would complain about line 1 instead of naming the setting.
BAD_INPUT_AFTER_SETTINGS = b"this is not json\n" + data_file("users.singer").read_bytes()


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"method": "FOO"}, ["method"]),
        ({"batch_size": 0}, ["batch_size"]),
        ({"request_sleep_interval_ms": 60001}, ["request_sleep_interval_ms"]),
        ({"request_sleep_interval_ms": -1}, ["request_sleep_interval_ms"]),
        ({"url": None}, ["url"]),
        ({"url": ""}, ["url"]),
        ({"request_mode": "bulk"}, ["request_mode"]),
        ({"auth_type": "basic", "username": "alice"}, ["password"]),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, ["X-A"]),
        ({"streams": {"s": {"batch_size": 0}}}, ["streams", "batch_size"]),
        ({"streams": {"s": {"method": "FOO"}}}, ["streams", "method"]),
        ({"streams": {"s": {"url": ""}}}, ["'s'", "url"]),
        ({"streams": {"s": {"request_sleep_interval_ms": 60001}}}, ["request_sleep_interval_ms"]),
    ],
    ids=[
        "method",
        "batch_size",
        "sleep-high",
        "sleep-negative",
        "url-missing",
        "url-empty",
        "request_mode",
        "basic-without-password",
        "header-crlf",
        "stream-batch_size",
        "stream-method",
        "stream-url-empty",
        "stream-sleep",
    ],
)
def test_invalid_settings_are_refused_before_reading_input(
    recorder, httpserver, tmp_path, settings, names
):
    config = {"url": httpserver.url_for("/users"), **settings}
    config = {k: v for k, v in config.items() if v is not None}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    assert result.stdout == ""
    for name in names:
        assert name in result.stderr, result.stderr
    assert "line 1" not in result.stderr


def test_valid_settings_at_the_limits_are_accepted(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users"),
        "batch_size": 1,
        "request_sleep_interval_ms": 0,
        "method": "PATCH",
        "streams": {"other": {"request_sleep_interval_ms": 60000}},
    }
    result = run_target(config, data_file("users.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 5


# Per-stream overrides


def test_stream_overrides_are_merged_over_top_level_settings(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/b-endpoint"),
        "headers": {"X-Source": "top"},
        "streams": {
            "a": {
                "url": httpserver.url_for("/a-endpoint"),
                "request_mode": "batch",
                "batch_size": 2,
            }
        },
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    a_requests = [seen for seen in recorder.requests if seen.path == "/a-endpoint"]
    b_requests = [seen for seen in recorder.requests if seen.path == "/b-endpoint"]
    assert len(a_requests) + len(b_requests) == len(recorder.requests)
    assert [[r["id"] for r in seen.json()] for seen in a_requests] == [[1, 2], [3]]
    assert [seen.json() for seen in b_requests] == [{"id": 101}, {"id": 102}, {"id": 103}]
    # Settings the override does not name come from the top level.
    assert {seen.header("X-Source") for seen in recorder.requests} == {"top"}
    assert {seen.method for seen in recorder.requests} == {"POST"}


def test_stream_override_inherits_every_setting_it_does_not_name(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/any"),
        "method": "PUT",
        "request_mode": "batch",
        "batch_size": 2,
        "streams": {"b": {"headers": {"X-Stream": "b"}}},
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    by_stream = {"a": [], "b": []}
    for seen in recorder.requests:
        body = seen.json()
        assert isinstance(body, list), f"a single-mode body was sent: {body}"
        by_stream["b" if seen.header("X-Stream") else "a"].append([r["id"] for r in body])
    assert by_stream == {"a": [[1, 2], [3]], "b": [[101, 102], [103]]}
    assert {seen.method for seen in recorder.requests} == {"PUT"}


def test_stream_override_of_method_headers_and_auth(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/any/#{id}"),
        "method": "PUT",
        "streams": {
            "b": {
                "method": "PATCH",
                "headers": {"X-Stream": "b"},
                "auth_type": "basic",
                "username": "bee",
                "password": "pw",
            }
        },
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    by_id = {seen.json()["id"]: seen for seen in recorder.requests}
    assert {by_id[i].method for i in (1, 2, 3)} == {"PUT"}
    assert {by_id[i].method for i in (101, 102, 103)} == {"PATCH"}
    assert {by_id[i].header("X-Stream") for i in (1, 2, 3)} == {None}
    assert {by_id[i].header("X-Stream") for i in (101, 102, 103)} == {"b"}
    assert {by_id[i].header("Authorization") for i in (1, 2, 3)} == {None}
    assert all(by_id[i].header("Authorization").startswith("Basic ") for i in (101, 102, 103))
    assert by_id[101].raw_uri == "/any/101"


def test_stream_without_override_uses_top_level_settings(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/top"),
        "streams": {"not-in-input": {"url": httpserver.url_for("/other")}},
    }
    result = run_target(config, data_file("users.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert {seen.path for seen in recorder.requests} == {"/top"}


def test_stream_override_template_checked_against_that_streams_schema(
    recorder, httpserver, tmp_path
):
    config = {
        "url": httpserver.url_for("/any"),
        "streams": {"b": {"url": httpserver.url_for("/b/#{tenant}")}},
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    assert "'b'" in result.stderr
    assert "tenant" in result.stderr
