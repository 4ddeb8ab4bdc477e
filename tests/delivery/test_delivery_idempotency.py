"""Idempotency key: one header per request, stable across retries and reruns.

The key is derived from stream, key properties and payload, so a receiver can drop a
request it already processed when a retry or a rerun of the tap sends it again.
"""

from __future__ import annotations

import json

import pytest
from support.run import data_file, run_target
from werkzeug import Response

USERS = data_file("delivery_users.singer")  # ids 1..5, a STATE after each record
BATCHED = data_file("delivery_users_batched.singer")  # ids 1..5, STATE after 4 and after 5
HEADER = "Idempotency-Key"
FAST = {"max_backoff_seconds": 0.05}


def keys(recorder, header=HEADER):
    return [seen.header(header) for seen in recorder.requests]


def ids(seen):
    body = seen.json()
    return [r["id"] for r in body] if isinstance(body, list) else [body["id"]]


def answers(*statuses):
    """Answer the first requests with `statuses`, then 200."""
    queue = list(statuses)
    return lambda seen: Response("busy", status=queue.pop(0)) if queue else None


def config_for(httpserver, **extra):
    return {"url": httpserver.url_for("/users"), "idempotency_key_header": HEADER, **extra}


def test_every_request_carries_a_key_of_its_own(recorder, httpserver, tmp_path):
    result = run_target(config_for(httpserver), USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    found = keys(recorder)
    assert len(found) == 5
    assert all(found), f"a request lacked {HEADER}: {found}"
    assert len(set(found)) == 5, "different records must get different keys"


def test_header_name_is_the_configured_one(recorder, httpserver, tmp_path):
    config = config_for(httpserver, idempotency_key_header="X-Request-Key")
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(keys(recorder, "X-Request-Key")) == 5
    assert all(keys(recorder, "X-Request-Key"))
    assert keys(recorder) == [None] * 5


def test_no_key_when_the_setting_is_off(recorder, httpserver, tmp_path):
    result = run_target({"url": httpserver.url_for("/users")}, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 5
    assert keys(recorder) == [None] * 5


@pytest.mark.parametrize(
    "settings",
    [{}, {"request_mode": "batch", "batch_size": 10}, {"request_mode": "one"}],
    ids=["single", "batch", "one"],
)
def test_key_is_the_same_across_retries(recorder, httpserver, tmp_path, settings):
    recorder.respond = answers(503, 500)
    result = run_target(config_for(httpserver, **settings, **FAST), BATCHED, tmp_path)
    assert result.returncode == 0, result.stderr
    first, second, third, *_ = recorder.requests
    assert first.body == second.body == third.body
    assert first.header(HEADER)
    assert first.header(HEADER) == second.header(HEADER) == third.header(HEADER)


@pytest.mark.parametrize(
    "settings",
    [{}, {"request_mode": "batch", "batch_size": 2}, {"request_mode": "one"}],
    ids=["single", "batch", "one"],
)
def test_key_is_the_same_across_reruns(recorder, httpserver, tmp_path, settings):
    config = config_for(httpserver, **settings)
    first = run_target(config, BATCHED, tmp_path)
    assert first.returncode == 0, first.stderr
    first_requests = list(recorder.requests)
    recorder.requests.clear()
    second = run_target(config, BATCHED, tmp_path)
    assert second.returncode == 0, second.stderr
    assert [ids(seen) for seen in recorder.requests] == [ids(seen) for seen in first_requests]
    assert keys(recorder) == [seen.header(HEADER) for seen in first_requests]
    assert all(keys(recorder))
    assert len(set(keys(recorder))) == len(recorder.requests)


def test_rerun_from_the_last_state_sends_the_failed_record_with_the_same_key(
    recorder, httpserver, tmp_path
):
    """Run 1 stops at record 3; the tap resumes after the last STATE and sends 3 again."""
    recorder.respond = lambda seen: Response("down", status=500) if ids(seen) == [3] else None
    config = config_for(httpserver, max_retries=0)
    first = run_target(config, USERS, tmp_path)
    assert first.returncode != 0
    assert first.states[-1] == {"bookmarks": {"users": {"id": 2}}}
    key_of_3 = recorder.requests[-1].header(HEADER)
    assert ids(recorder.requests[-1]) == [3]

    recorder.respond = None
    recorder.requests.clear()
    lines = USERS.read_text().splitlines()
    resumed = "\n".join([lines[0], *lines[5:]]) + "\n"  # SCHEMA, then record 3 onwards
    second = run_target(config, resumed, tmp_path)
    assert second.returncode == 0, second.stderr
    assert ids(recorder.requests[0]) == [3]
    assert recorder.requests[0].header(HEADER) == key_of_3


def test_same_record_in_two_streams_gets_two_keys(recorder, httpserver, tmp_path):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [
        {"type": "SCHEMA", "stream": "a", "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": "a", "record": {"id": 1}},
        {"type": "SCHEMA", "stream": "b", "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": "b", "record": {"id": 1}},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    result = run_target(config_for(httpserver), text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests[0].body == recorder.requests[1].body
    first, second = keys(recorder)
    assert first
    assert second
    assert first != second


def test_changed_record_with_the_same_key_property_gets_a_new_key(recorder, httpserver, tmp_path):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}
    lines = [
        {"type": "SCHEMA", "stream": "a", "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": "a", "record": {"id": 1, "v": "old"}},
        {"type": "RECORD", "stream": "a", "record": {"id": 1, "v": "new"}},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    result = run_target(config_for(httpserver), text, tmp_path)
    assert result.returncode == 0, result.stderr
    old, new = keys(recorder)
    assert old
    assert new
    assert old != new
