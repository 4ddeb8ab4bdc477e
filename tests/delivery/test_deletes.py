"""Hard deletes: a record whose `_sdc_deleted_at` is set becomes one delete request.

A delete is never sent ahead of the records before it in the input, nor a record ahead of
the deletes before it; deletes are counted, retried, written to the error file and the
response files, and acknowledged to STATE like any request. ACTIVATE_VERSION is said once
per stream. Every test talks to a real loopback server.
"""

from __future__ import annotations

import json

import pytest
from support.record_paths import lines, no_traceback, state, the_summary
from support.run import NO_RETRY, run_target
from werkzeug import Response

PROPS = {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "_sdc_deleted_at": {"type": ["null", "string"], "format": "date-time"},
}
WHEN = "2026-11-28T10:00:00Z"


def schema(stream: str = "users", properties: dict | None = None) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties or PROPS},
        "key_properties": ["id"],
    }


def upsert(i: int, stream: str = "users") -> dict:
    return {"type": "RECORD", "stream": stream, "record": {"id": i, "name": f"n{i}"}}


def delete(i: int, stream: str = "users") -> dict:
    record = {"id": i, "name": f"n{i}", "_sdc_deleted_at": WHEN}
    return {"type": "RECORD", "stream": stream, "record": record}


def hard(httpserver, **settings) -> dict:
    return {
        "url": httpserver.url_for("/users"),
        "request_mode": "batch",
        "batch_size": 3,
        "hard_delete": True,
        "delete_url": httpserver.url_for("/users/#{id}"),
        **settings,
    }


def shown(recorder) -> list[tuple[str, str, object]]:
    """Each request as (method, path, ids of the records in its body, or its body text)."""
    out = []
    for seen in recorder.requests:
        body = seen.json() if seen.body else None
        ids = [r["id"] for r in body] if isinstance(body, list) else body
        out.append((seen.method, seen.path, ids))
    return out


def test_deletes_are_sent_after_the_records_before_them_and_before_those_after(
    recorder, httpserver, tmp_path
):
    text = lines(
        schema(),
        upsert(1),
        upsert(2),
        delete(1),  # cuts the batch [1, 2]: it goes first
        state(1),
        upsert(3),
        upsert(4),
        delete(3),
        delete(4),  # a run of deletes cuts once
        upsert(5),
        upsert(6),
        upsert(7),
        upsert(8),
        state(2),
    )

    result = run_target(hard(httpserver), text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert shown(recorder) == [
        ("POST", "/users", [1, 2]),
        ("DELETE", "/users/1", None),
        ("POST", "/users", [3, 4]),
        ("DELETE", "/users/3", None),
        ("DELETE", "/users/4", None),
        ("POST", "/users", [5, 6, 7]),
        ("POST", "/users", [8]),
    ]
    for seen in recorder.requests:
        if seen.method == "DELETE":
            assert seen.body == b""
            assert seen.header("Content-Type") is None
    assert result.states == [{"at": 1}, {"at": 2}]  # each once its records were delivered
    counts = the_summary(result.stderr)["total"]
    assert (counts["received"], counts["delivered"], counts["deletes"]) == (11, 11, 3)
    assert counts["requests"] == 7
    assert "(0 retries), 3 deletes," in result.stderr
    no_traceback(result.stderr)


def test_without_hard_delete_a_deleted_record_is_sent_as_a_record(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users"), "request_mode": "batch"}

    result = run_target(config, lines(schema(), upsert(1), delete(2)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [seen.method for seen in recorder.requests] == ["POST"]
    assert recorder.bodies == [
        [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2", "_sdc_deleted_at": WHEN}]
    ]
    assert the_summary(result.stderr)["total"]["deletes"] == 0


def test_a_null_deleted_at_is_an_ordinary_record(recorder, httpserver, tmp_path):
    alive = {"type": "RECORD", "stream": "users", "record": {"id": 1, "_sdc_deleted_at": None}}

    result = run_target(hard(httpserver), lines(schema(), alive), tmp_path)

    assert result.returncode == 0, result.stderr
    assert shown(recorder) == [("POST", "/users", [1])]


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_deletes_keep_their_place_in_single_mode_and_through_stream_maps(
    recorder, httpserver, tmp_path, mode
):
    # stream_maps take the SDK's record path, which strips _sdc_* fields: the mark stays.
    config = hard(
        httpserver,
        request_mode=mode,
        stream_maps={"users": {"__alias__": "people"}},
        streams={"people": {"url": httpserver.url_for("/people")}},
    )

    result = run_target(config, lines(schema(), upsert(1), delete(1), upsert(2)), tmp_path)

    assert result.returncode == 0, result.stderr
    single = [("POST", "/people", {"id": 1, "name": "n1"})]
    assert shown(recorder) == [
        *(single if mode == "single" else [("POST", "/people", [1])]),
        ("DELETE", "/users/1", None),
        ("POST", "/people", {"id": 2, "name": "n2"} if mode == "single" else [2]),
    ]


def test_delete_url_payload_method_headers_and_auth(recorder, httpserver, tmp_path):
    config = hard(
        httpserver,
        delete_url=httpserver.url_for("/users/#{id}/erase?at=#{_sdc_deleted_at}"),
        delete_method="POST",
        delete_payload='{"id": "#{id}", "deleted_at": "#{_sdc_deleted_at}", "why": "tap"}',
        headers={"X-Tenant": "t-#{id}"},
        auth_type="bearer",
        bearer_token="tok-123",
    )

    result = run_target(config, lines(schema(), delete(7)), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert (seen.method, seen.path) == ("POST", "/users/7/erase")
    assert seen.raw_uri.endswith("?at=2026-11-28T10%3A00%3A00Z")
    assert seen.json() == {"id": 7, "deleted_at": WHEN, "why": "tap"}
    assert seen.header("Content-Type") == "application/json"
    assert seen.header("X-Tenant") == "t-7"
    assert seen.header("Authorization") == "Bearer tok-123"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "GET"])
def test_delete_method_is_any_of_the_methods(recorder, httpserver, tmp_path, method):
    config = hard(httpserver, delete_method=method)

    result = run_target(config, lines(schema(), delete(3)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert shown(recorder) == [(method, "/users/3", None)]


def test_delete_payload_follows_the_body_format(recorder, httpserver, tmp_path):
    config = hard(httpserver, body_format="urlencoded", delete_payload="id=#{id}&gone=yes")

    result = run_target(config, lines(schema(), delete(3)), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert seen.body == b"id=3&gone=yes"
    assert seen.header("Content-Type") == "application/x-www-form-urlencoded"


def test_answer_rules_judge_record_requests_and_leave_deletes_to_their_status(
    recorder, httpserver, tmp_path
):
    """A delete's answer is often empty (204): only its status decides, as documented."""
    recorder.respond = lambda seen: (
        Response(status=204)
        if seen.method == "DELETE"
        else Response(json.dumps({"items": [{"ok": True}] * len(seen.json())}))
    )
    config = hard(
        httpserver,
        success_condition="items",
        item_results="items",
        item_success_condition="ok",
        **NO_RETRY,
    )
    text = lines(schema(), upsert(1), delete(2), upsert(3), state(1))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert shown(recorder) == [
        ("POST", "/users", [1]),
        ("DELETE", "/users/2", None),
        ("POST", "/users", [3]),
    ]
    assert result.states == [{"at": 1}]
    counts = the_summary(result.stderr)["total"]
    assert (counts["delivered"], counts["failed"], counts["deletes"]) == (3, 0, 1)


def test_a_failing_delete_goes_to_the_error_file_and_the_run_goes_on(
    recorder, httpserver, tmp_path
):
    recorder.respond = lambda seen: (
        Response("gone already", status=404) if seen.method == "DELETE" else None
    )
    errors = tmp_path / "errors.jsonl"
    config = hard(
        httpserver, fail_on_error=False, error_file_path=str(errors), batch_size=10, **NO_RETRY
    )
    text = lines(schema(), upsert(1), delete(2), state(1), upsert(3), state(2))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert shown(recorder) == [
        ("POST", "/users", [1]),
        ("DELETE", "/users/2", None),
        ("POST", "/users", [3]),
    ]
    [failure] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert failure["method"] == "DELETE"
    assert failure["url"] == httpserver.url_for("/users/2")
    assert failure["status"] == 404
    assert failure["record"] == {"id": 2, "name": "n2", "_sdc_deleted_at": WHEN}
    assert result.states == [{"at": 1}, {"at": 2}]  # recorded as failed: STATE passes it
    counts = the_summary(result.stderr)["total"]
    assert (counts["delivered"], counts["failed"], counts["deletes"]) == (2, 1, 1)


def test_a_failing_delete_stops_the_run_without_state_past_it(recorder, httpserver, tmp_path):
    recorder.respond = lambda seen: Response("no", status=500) if seen.method == "DELETE" else None
    text = lines(schema(), upsert(1), state(1), delete(2), state(2), upsert(3), state(3))

    result = run_target(hard(httpserver, **NO_RETRY), text, tmp_path)

    assert result.returncode == 1
    assert "stream 'users': DELETE " in result.stderr
    assert "/users/2 answered 500" in result.stderr
    assert result.states == [{"at": 1}]
    counts = the_summary(result.stderr)["total"]
    assert (counts["delivered"], counts["failed"], counts["deletes"]) == (1, 1, 1)
    no_traceback(result.stderr)


def test_a_delete_is_retried_and_its_answer_saved(recorder, httpserver, tmp_path):
    answers = iter([Response("busy", status=503, headers={"Retry-After": "0"})])
    recorder.respond = lambda seen: next(answers, None) if seen.method == "DELETE" else None
    folder = tmp_path / "responses"
    config = hard(
        httpserver,
        max_backoff_seconds=0.01,
        save_responses=True,
        response_file_path=str(folder),
    )

    result = run_target(config, lines(schema(), upsert(1), delete(1)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [seen.method for seen in recorder.requests] == ["POST", "DELETE", "DELETE"]
    counts = the_summary(result.stderr)["total"]
    assert (counts["requests"], counts["retries"], counts["deletes"]) == (2, 1, 1)
    [path] = folder.glob("*.jsonl")
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["method"], e["status"], e["attempts"]) for e in entries] == [
        ("POST", 200, 1),
        ("DELETE", 200, 2),
    ]
    assert entries[1]["keys"] == {"id": 1}
    assert entries[1]["records"] == 1


def test_a_delete_whose_url_field_is_null_is_a_record_error(recorder, httpserver, tmp_path):
    config = hard(httpserver, delete_url=httpserver.url_for("/users/#{code}"))
    properties = {**PROPS, "code": {"type": ["null", "string"]}}
    gone = {"id": 4, "code": None, "_sdc_deleted_at": WHEN}
    gone_record = {"type": "RECORD", "stream": "users", "record": gone}
    text = lines(schema(properties=properties), gone_record)

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert "input line 2:" in result.stderr
    assert "field 'code' is null" in result.stderr
    assert recorder.requests == []
    counts = the_summary(result.stderr)["total"]
    assert (counts["failed"], counts["deletes"]) == (1, 1)


def test_dry_run_shows_the_delete_requests(recorder, httpserver, tmp_path):
    result = run_target(hard(httpserver, dry_run=True), lines(schema(), delete(9)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    assert "dry run: stream 'users' request 1: DELETE " in result.stderr
    assert "/users/9 headers=" in result.stderr


def test_the_delete_url_password_is_masked(recorder, httpserver, tmp_path):
    recorder.respond = lambda seen: Response("no", status=400)
    url = httpserver.url_for("/users/#{id}").replace("://", "://admin:pw-s3cret@")

    result = run_target(hard(httpserver, delete_url=url), lines(schema(), delete(1)), tmp_path)

    assert result.returncode == 1
    assert "answered 400" in result.stderr
    assert "pw-s3cret" not in result.stderr


def test_a_schema_without_deleted_at_is_warned_about_once(recorder, httpserver, tmp_path):
    plain = {"id": {"type": "integer"}}
    wider = {**plain, "name": {"type": "string"}}
    text = lines(schema(properties=plain), upsert(1), schema(properties=wider), upsert(2))

    result = run_target(hard(httpserver), text, tmp_path)

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "no '_sdc_deleted_at'" in line]
    assert len(warnings) == 1, result.stderr
    assert "stream 'users'" in warnings[0]
    assert "add_record_metadata" in warnings[0]
    assert "LOG_BASED" in warnings[0]


def test_a_schema_with_deleted_at_is_not_warned_about(recorder, httpserver, tmp_path):
    result = run_target(hard(httpserver), lines(schema(), upsert(1)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert "_sdc_deleted_at" not in result.stderr


def test_activate_version_is_said_once_per_stream(recorder, httpserver, tmp_path):
    def activate(stream: str, version: int) -> dict:
        return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}

    text = lines(
        schema("a"),
        schema("b"),
        activate("a", 1),
        upsert(1, "a"),
        activate("a", 1),
        activate("b", 1),
        activate("a", 2),
        activate("b", 2),
    )
    config = {"url": httpserver.url_for("/x")}

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "ACTIVATE_VERSION" in line]
    assert len(said) == 2, result.stderr
    assert "stream 'a': ACTIVATE_VERSION messages are ignored" in said[0]
    assert "stream 'b': ACTIVATE_VERSION messages are ignored" in said[1]
    assert "hard_delete" in said[0]
    assert len(recorder.requests) == 1


def test_an_unsendable_delete_goes_to_the_error_file_as_a_delete(recorder, httpserver, tmp_path):
    errors = tmp_path / "errors.jsonl"
    template = httpserver.url_for("/users/#{code}")
    config = hard(httpserver, delete_url=template, fail_on_error=False, error_file_path=str(errors))
    properties = {**PROPS, "code": {"type": ["null", "string"]}}
    gone = {"id": 4, "code": None, "_sdc_deleted_at": WHEN}
    text = lines(
        schema(properties=properties),
        {"type": "RECORD", "stream": "users", "record": gone},
        upsert(5),
        state(1),
    )

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    [failure] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert (failure["method"], failure["url"], failure["line"]) == ("DELETE", template, 2)
    assert failure["record"] == gone
    assert shown(recorder) == [("POST", "/users", [5])]
    assert result.states == [{"at": 1}]


def test_a_delete_has_its_own_idempotency_key_the_same_on_a_rerun(recorder, httpserver, tmp_path):
    config = hard(httpserver, idempotency_key_header="Idempotency-Key")
    text = lines(schema(), upsert(1), delete(1), delete(2))

    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        result = run_target(config, text, folder)
        assert result.returncode == 0, result.stderr

    keys = [seen.header("Idempotency-Key") for seen in recorder.requests]
    assert [seen.method for seen in recorder.requests] == ["POST", "DELETE", "DELETE"] * 2
    assert all(keys) and len(set(keys[:3])) == 3
    assert keys[:3] == keys[3:]
