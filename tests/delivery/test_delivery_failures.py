"""Failed deliveries: stop with one clear line, or (fail_on_error false) record and go on.

An answer that is not 2xx, or a request that cannot be sent, is a failed delivery.

With `error_file_path`, each failed record becomes one JSON line in the file; without
it, the failure is logged. Either way the run goes on and STATE advances past it.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime
from decimal import Decimal

import pytest
from support.run import NO_RETRY, data_file, error_lines, failing, run_target, sent_ids
from werkzeug import Response

PLAIN_USERS = data_file("users.singer")  # ids 1..5, no STATE
USERS = data_file("delivery_users.singer")  # ids 1..5, a STATE after each record
BATCHED = data_file("delivery_users_batched.singer")  # ids 1..5, STATE after 4 and after 5
TWO_STREAMS = data_file("delivery_two_streams.singer")  # users 1..3, orders 10, 11, one STATE
FAST = {"max_retries": 1, "max_backoff_seconds": 0.05}
SECRET = "s3cr3tpw"
ERROR_FILE_KEYS = {"stream", "record", "method", "url", "status", "answer", "attempts", "time"}


def state(n):
    return {"bookmarks": {"users": {"id": n}}}


def input_records(path):
    """The `record` objects of the file's RECORD lines, by id, exactly as the tap wrote them."""
    records = {}
    for line in path.read_text().splitlines():
        message = json.loads(line, parse_float=Decimal)
        if message["type"] == "RECORD":
            records[message["record"]["id"]] = message["record"]
    return records


def with_credentials(url):
    return url.replace("://", f"://bob:{SECRET}@")


def read_error_file(path):
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


# fail_on_error true (the default)


def test_failure_stops_the_run_with_one_clear_line(recorder, httpserver, tmp_path):
    recorder.respond = failing({3})
    url = with_credentials(httpserver.url_for("/users"))
    result = run_target({"url": url, **FAST}, USERS, tmp_path)
    assert result.returncode != 0
    assert sent_ids(recorder) == [[1], [2], [3], [3]], "3 retried once, 4 and 5 never sent"
    (line,) = error_lines(result.stderr, "database on fire")
    assert "'users'" in line
    assert "POST" in line
    assert httpserver.url_for("/users").split("://")[1] in line
    assert "500" in line
    assert re.search(r"\b2 attempts\b", line), line
    assert SECRET not in result.stderr
    assert SECRET not in result.stdout
    assert "Traceback" not in result.stderr
    # STATE up to the last delivered record, none past the failed one.
    assert result.states == [state(1), state(2)]


def test_failed_batch_stops_the_run_without_state_past_it(recorder, httpserver, tmp_path):
    recorder.respond = failing({3})
    config = {
        "url": httpserver.url_for("/users"),
        "request_mode": "batch",
        "batch_size": 2,
        **FAST,
    }
    result = run_target(config, BATCHED, tmp_path)
    assert result.returncode != 0
    assert sent_ids(recorder) == [[1, 2], [3, 4], [3, 4]]
    assert len(error_lines(result.stderr, "database on fire")) == 1
    assert result.states == []  # the first STATE comes after record 4, which failed


# The error line: the stream, the request, the answer (an excerpt)


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "INTERNAL SERVER ERROR"), (404, "NOT FOUND"), (422, "")]
)
def test_error_answer_stops_the_run_with_one_clear_line(
    recorder, httpserver, tmp_path, status, reason
):
    recorder.respond = failing({2}, status=status)
    result = run_target({"url": httpserver.url_for("/users"), **NO_RETRY}, PLAIN_USERS, tmp_path)
    assert result.returncode != 0
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "'users'" in line
    assert "POST" in line
    assert httpserver.url_for("/users") in line
    assert str(status) in line
    assert reason.lower() in line.lower()
    assert "Traceback" not in result.stderr


def test_error_line_names_the_method_and_rendered_url(recorder, httpserver, tmp_path):
    recorder.respond = failing({3})
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "method": "PUT",
        "request_mode": "batch",
        "batch_size": 2,
        **NO_RETRY,
    }
    result = run_target(config, PLAIN_USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "database on fire")
    assert "PUT" in line
    assert httpserver.url_for("/users/3") in line


def test_error_line_holds_only_an_excerpt_of_a_long_answer(recorder, httpserver, tmp_path):
    body = "START " + "x" * 20_000 + " END-OF-BODY"
    recorder.respond = failing({1}, body=body)
    result = run_target({"url": httpserver.url_for("/users"), **NO_RETRY}, PLAIN_USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "START")
    assert "END-OF-BODY" not in result.stderr
    assert len(line) < 2_000


def test_error_answer_with_default_settings_stops_the_run(recorder, httpserver, tmp_path):
    recorder.respond = failing({1}, status=404)  # 404 is never retried
    result = run_target({"url": httpserver.url_for("/users")}, PLAIN_USERS, tmp_path)
    assert result.returncode != 0
    assert [seen.json()["id"] for seen in recorder.requests] == [1]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "404" in line


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_unreachable_endpoint_stops_the_run_naming_the_request(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/users"
    result = run_target({"url": url, **NO_RETRY}, PLAIN_USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "could not be sent")
    assert "'users'" in line
    assert f"POST {url}" in line


@pytest.mark.parametrize(
    "settings",
    [{"request_mode": "single"}, {"request_mode": "batch", "batch_size": 2}],
    ids=["single", "batch"],
)
def test_fail_on_error_false_goes_on_and_logs_the_failure(recorder, httpserver, tmp_path, settings):
    recorder.respond = failing({2})
    config = {"url": httpserver.url_for("/users"), "fail_on_error": False, **settings, **NO_RETRY}
    result = run_target(config, PLAIN_USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [i for ids in sent_ids(recorder) for i in ids] == [1, 2, 3, 4, 5]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "500" in line
    assert "'users'" in line


def test_fail_on_error_false_keeps_emitting_state(recorder, httpserver, tmp_path):
    recorder.respond = failing({2})
    config = {"url": httpserver.url_for("/users"), "fail_on_error": False, **NO_RETRY}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.states[-1] == {"bookmarks": {"users": {"id": 5}}}


def test_fail_on_error_per_stream(recorder, httpserver, tmp_path):
    def respond(seen):
        return Response("nope", status=500)

    recorder.respond = respond
    config = {
        "url": httpserver.url_for("/any"),
        "fail_on_error": False,
        # max_retries repeated here: see test_settings' test of inherited top-level settings.
        "streams": {"b": {"fail_on_error": True, **NO_RETRY}},
        **NO_RETRY,
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode != 0
    # Stream a's failure is tolerated; the first record of stream b stops the run.
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 101]


# Only a 2xx answer is a delivery


def redirect_or_bare(seen):
    if seen.path == "/users":
        return Response("moved", status=302, headers={"Location": "/login"})
    if seen.path == "/see-other":
        return Response("see other", status=303, headers={"Location": "/login"})
    if seen.path == "/choices":
        return Response("pick one", status=300)
    return Response("<html>login page</html>", status=200)


@pytest.mark.parametrize("path", ["/users", "/see-other", "/choices"])
def test_an_answer_that_is_not_2xx_is_not_a_delivery(recorder, httpserver, tmp_path, path):
    # A 302/303 makes an HTTP client repeat the request as a bodiless GET elsewhere; a 200
    # from there (here a login page) says nothing about the record, which never arrived.
    recorder.respond = redirect_or_bare
    config = {"url": httpserver.url_for(path), **NO_RETRY}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode != 0
    assert result.states == [{"bookmarks": {"users": {"id": 0}}}]
    posted = [seen for seen in recorder.requests if seen.method == "POST"]
    assert [seen.json()["id"] for seen in posted] == [1]


# fail_on_error false, with an error file


def check_error_line(entry, record, *, url, attempts=2, status=500):
    assert set(entry) >= ERROR_FILE_KEYS, entry
    assert entry["stream"] == "users"
    assert entry["record"] == record
    assert entry["method"] == "POST"
    assert entry["url"].endswith(url.split("://")[1]), entry["url"]
    assert entry["status"] == status
    assert "database on fire" in entry["answer"]
    assert entry["attempts"] == attempts
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_error_file_single_mode(recorder, httpserver, tmp_path):
    recorder.respond = failing({2, 4})
    errors = tmp_path / "out" / "errors.jsonl"
    config = {
        "url": with_credentials(httpserver.url_for("/users")),
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [[1], [2], [2], [3], [4], [4], [5]]
    records = input_records(USERS)
    entries = read_error_file(errors)
    assert [e["record"]["id"] for e in entries] == [2, 4]
    for entry in entries:
        check_error_line(entry, records[entry["record"]["id"]], url=httpserver.url_for("/users"))
    assert SECRET not in errors.read_text()
    assert SECRET not in result.stderr
    # Counted, and STATE advanced past the failed records.
    assert re.search(r"\b2 failed\b", result.stderr), result.stderr
    assert result.states == [state(n) for n in range(1, 6)]


def test_error_file_batch_mode_writes_one_line_per_record(recorder, httpserver, tmp_path):
    recorder.respond = failing({3})
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": httpserver.url_for("/users"),
        "request_mode": "batch",
        "batch_size": 2,
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, BATCHED, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [[1, 2], [3, 4], [3, 4], [5]]
    records = input_records(BATCHED)
    entries = read_error_file(errors)
    assert [e["record"] for e in entries] == [records[3], records[4]]
    for entry in entries:
        check_error_line(entry, entry["record"], url=httpserver.url_for("/users"))
    assert re.search(r"\b2 failed\b", result.stderr), result.stderr
    assert result.states == [state(4), state(5)]


def test_error_file_one_mode_and_the_next_stream_still_delivered(recorder, httpserver, tmp_path):
    recorder.respond = failing({1})
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": httpserver.url_for("/in"),
        "request_mode": "one",
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, TWO_STREAMS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [[1, 2, 3], [1, 2, 3], [10, 11]]
    records = input_records(TWO_STREAMS)
    entries = read_error_file(errors)
    assert [e["record"] for e in entries] == [records[1], records[2], records[3]]
    for entry in entries:
        check_error_line(entry, entry["record"], url=httpserver.url_for("/in"))
    assert result.states == [{"bookmarks": {"done": True}}]


def test_error_file_keeps_the_record_exactly_as_the_tap_wrote_it(recorder, httpserver, tmp_path):
    raw_record = '{"id": 7, "price": 1.10, "big": 12345678901234567890.000001, "name": "Zoë ✓"}'
    text = (
        '{"type": "SCHEMA", "stream": "users", "schema": {"type": "object", "properties": '
        '{"id": {"type": "integer"}, "price": {"type": "number"}, "big": {"type": "number"}, '
        '"name": {"type": "string"}}}, "key_properties": ["id"]}\n'
        f'{{"type": "RECORD", "stream": "users", "record": {raw_record}}}\n'
    )
    recorder.respond = failing({7})
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": httpserver.url_for("/users"),
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr
    (entry,) = read_error_file(errors)
    record = entry["record"]
    assert record == json.loads(raw_record, parse_float=Decimal)
    assert str(record["price"]) == "1.10"
    assert str(record["big"]) == "12345678901234567890.000001"
    assert record["name"] == "Zoë ✓"


def test_error_file_is_written_before_the_state_that_passes_the_record(
    recorder, httpserver, tmp_path, live_target
):
    recorder.respond = failing({1})
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": httpserver.url_for("/users"),
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    lines = USERS.read_text().splitlines()
    target = live_target(config)
    target.send(*lines[:3])  # SCHEMA, record 1 (fails), its STATE
    assert json.loads(target.next_line()) == state(1)
    # The STATE is out while the run goes on: the failure is already on disk.
    assert [e["record"]["id"] for e in read_error_file(errors)] == [1]
    target.send(*lines[3:])
    assert target.finish() == 0, target.stderr


NULL_TEAM = (
    '{"type": "SCHEMA", "stream": "users", "schema": {"type": "object", "properties": '
    '{"id": {"type": "integer"}, "team": {"type": ["string", "null"]}}}}\n'
    '{"type": "RECORD", "stream": "users", "record": {"id": 1, "team": "a"}}\n'
    '{"type": "RECORD", "stream": "users", "record": {"id": 2, "team": null}}\n'
    '{"type": "STATE", "value": {"after": 2}}\n'
    '{"type": "RECORD", "stream": "users", "record": {"id": 3, "team": "c"}}\n'
)


def run_null_team(recorder, httpserver, tmp_path):
    """A null URL value fails record 2 before any request; the run goes on."""
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": with_credentials(httpserver.url_for("/teams/#{team}/users")),
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, NULL_TEAM, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.path for seen in recorder.requests] == ["/teams/a/users", "/teams/c/users"]
    assert result.states == [{"after": 2}]
    (entry,) = read_error_file(errors)
    assert entry["stream"] == "users"
    assert entry["record"] == {"id": 2, "team": None}
    assert "team" in entry["error"]
    assert entry["attempts"] == 0
    return entry, errors.read_text()


def test_error_file_for_a_record_that_cannot_be_shaped_hides_url_credentials(
    recorder, httpserver, tmp_path
):
    _, text = run_null_team(recorder, httpserver, tmp_path)
    assert SECRET not in text


def test_error_file_for_a_record_that_cannot_be_shaped_has_the_usual_keys(
    recorder, httpserver, tmp_path
):
    """The same keys as a failed request, so a reader of the file handles every line alike."""
    entry, _ = run_null_team(recorder, httpserver, tmp_path)
    assert set(entry) >= ERROR_FILE_KEYS, entry
    assert entry["status"] is None


# fail_on_error false, no error file: the log


@pytest.mark.parametrize(
    ("settings", "file", "expected"),
    [
        ({}, USERS, [[1], [2], [2], [3], [4], [5]]),
        ({"request_mode": "batch", "batch_size": 2}, BATCHED, [[1, 2], [3, 4], [3, 4], [5]]),
    ],
    ids=["single", "batch"],
)
def test_without_error_file_failures_are_logged_and_state_advances(
    recorder, httpserver, tmp_path, settings, file, expected
):
    recorder.respond = failing({2} if file is USERS else {3})
    config = {
        "url": with_credentials(httpserver.url_for("/users")),
        "fail_on_error": False,
        **settings,
        **FAST,
    }
    result = run_target(config, file, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == expected
    (line,) = error_lines(result.stderr, "database on fire")
    assert "'users'" in line
    assert "500" in line
    assert SECRET not in result.stderr
    failed = 1 if file is USERS else 2
    assert re.search(rf"\b{failed} failed\b", result.stderr), result.stderr
    # STATE advanced past the failed record(s), up to the last one.
    expected_states = [state(n) for n in range(1, 6)] if file is USERS else [state(4), state(5)]
    assert result.states == expected_states


def test_stream_override_keeps_the_top_level_failure_settings(recorder, httpserver, tmp_path):
    """A stream override that names only its URL still tolerates failures into the file."""
    recorder.respond = failing({10})
    errors = tmp_path / "errors.jsonl"
    config = {
        "url": httpserver.url_for("/users"),
        "fail_on_error": False,
        "error_file_path": str(errors),
        "max_retries": 0,
        # The backoff cap repeated only to keep this test short, whatever happens.
        "streams": {"orders": {"url": httpserver.url_for("/orders"), "max_backoff_seconds": 0.05}},
    }
    result = run_target(config, TWO_STREAMS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [[1], [2], [3], [10], [11]]
    (entry,) = read_error_file(errors)
    assert entry["stream"] == "orders"
    assert entry["attempts"] == 1
    assert result.states == [{"bookmarks": {"done": True}}]


def test_fail_on_error_true_ignores_the_error_file(recorder, httpserver, tmp_path):
    recorder.respond = failing({1})
    errors = tmp_path / "errors.jsonl"
    config = {"url": httpserver.url_for("/users"), "error_file_path": str(errors), **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    assert sent_ids(recorder) == [[1], [1]]
    assert not errors.exists() or errors.read_text() == ""


# No silent loss


def test_error_file_lines_stay_json_when_a_secret_appears_in_a_record(
    recorder, httpserver, tmp_path
):
    """Secrets are masked without breaking the line: every line parses, records intact."""
    recorder.respond = failing({14242})
    errors = tmp_path / "errors.jsonl"
    text = (
        '{"type": "SCHEMA", "stream": "users", "schema": {"type": "object", "properties": '
        '{"id": {"type": "integer"}, "name": {"type": "string"}}}, "key_properties": ["id"]}\n'
        '{"type": "RECORD", "stream": "users", "record": {"id": 14242, "name": "Ada"}}\n'
    )
    config = {
        "url": httpserver.url_for("/users"),
        "auth_type": "basic",
        "username": "bob",
        "password": "4242",  # a short numeric password, as some services hand out
        "fail_on_error": False,
        "error_file_path": str(errors),
        **FAST,
    }
    result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr
    for raw in errors.read_text().splitlines():
        json.loads(raw)  # each line is JSON, whatever the secret's spelling
    (entry,) = read_error_file(errors)
    assert entry["record"] == {"id": 14242, "name": "Ada"}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_never_loses_the_record(recorder, httpserver, tmp_path, status):
    """Either the record reaches the new location with its method and body, or the run
    fails: a POST turned into a bodiless GET must not count as delivered."""

    def respond(seen):
        if seen.path == "/users":
            return Response("moved", status=status, headers={"Location": "/elsewhere"})
        return None

    recorder.respond = respond
    config = {"url": httpserver.url_for("/users"), **FAST}
    result = run_target(config, USERS, tmp_path)
    moved = [seen for seen in recorder.requests if seen.path == "/elsewhere"]
    if result.returncode == 0:
        assert [seen.method for seen in moved] == ["POST"] * 5, "the redirect dropped the body"
        assert [seen.json()["id"] for seen in moved] == [1, 2, 3, 4, 5]
    else:
        assert str(status) in result.stderr
        assert result.states == []
