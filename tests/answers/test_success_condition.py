"""success_condition: a 2xx answer whose body says "failed" is a failed request.

Runs the target in-process against a loopback server that answers 200 to every request,
`{"ok": false}` for the records the test picks.
"""

from __future__ import annotations

import json

import pytest
from support.inprocess import run_inprocess
from support.loopback import Server

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}}
SECRET = "s3cret-answer-token"


def lines(*messages: dict) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def record(i: int) -> dict:
    return {"type": "RECORD", "stream": "users", "record": {"id": i}}


def state(i: int) -> dict:
    return {"type": "STATE", "value": {"after": i}}


# Records 1, 2, 3, each followed by a STATE naming it.
INPUT = lines(
    {"type": "SCHEMA", "stream": "users", "schema": SCHEMA, "key_properties": ["id"]},
    *[m for i in (1, 2, 3) for m in (record(i), state(i))],
)


def soft_failing(bad: set[int], text: str | None = None):
    """200 for everything; {"ok": false} (or `text`) for the records in `bad`."""

    def answer(got):
        ok = json.loads(got.body)["id"] not in bad
        body = json.dumps({"ok": ok, "token": SECRET}) if text is None or ok else text
        return 200, {"Content-Type": "application/json"}, body

    return answer


def test_a_soft_failure_stops_the_run_and_no_state_passes_it(tmp_path):
    with Server(soft_failing({2}), nodelay=True) as server:
        config = {"url": server.url("/users"), "success_condition": "ok", "bearer_token": SECRET}
        run = run_inprocess(config, INPUT, tmp_path)

    assert run.exit_code == 1, run.stderr
    assert run.traceback is None
    assert run.states == [{"after": 1}]  # the good answer passed; nothing past record 2
    [error] = run.errors
    assert error.endswith(
        f"stream 'users': POST {server.url('/users')} answered 200 OK, but success_condition "
        '\'ok\' gave false: {"ok": false, "token": "***"}'
    )
    assert SECRET not in run.stderr
    assert len(server.requests) == 2  # not retried, nothing more sent
    totals = run.summary["total"]
    assert (totals["delivered"], totals["failed"], totals["not_sent"]) == (1, 1, 0)


def test_with_fail_on_error_false_the_record_goes_to_the_error_file(tmp_path):
    errors = tmp_path / "errors.jsonl"
    with Server(soft_failing({2}), nodelay=True) as server:
        config = {
            "url": server.url("/users"),
            "success_condition": "ok",
            "fail_on_error": False,
            "error_file_path": str(errors),
            "bearer_token": SECRET,
        }
        run = run_inprocess(config, INPUT, tmp_path / "run")

    assert run.exit_code == 0, run.stderr
    # Record 2 is recorded as failed, so the STATE after it is printed.
    assert run.states == [{"after": 1}, {"after": 2}, {"after": 3}]
    [entry] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert entry["record"] == {"id": 2}
    assert entry["status"] == 200
    assert entry["answer"] == '{"ok": false, "token": "***"}'
    assert "success_condition 'ok' gave false" in entry["error"]
    totals = run.summary["total"]
    assert (totals["delivered"], totals["failed"]) == (2, 1)


def test_the_response_file_holds_the_failed_answer(tmp_path):
    folder = tmp_path / "responses"
    with Server(soft_failing({1}), nodelay=True) as server:
        config = {
            "url": server.url("/users"),
            "success_condition": "ok",
            "fail_on_error": False,
            "save_responses": True,
            "response_file_path": str(folder),
            "bearer_token": SECRET,
        }
        run = run_inprocess(config, INPUT, tmp_path / "run")

    assert run.exit_code == 0, run.stderr
    [file] = folder.iterdir()
    entries = [json.loads(line) for line in file.read_text().splitlines()]
    assert [e["keys"] for e in entries] == [{"id": 1}, {"id": 2}, {"id": 3}]
    first = entries[0]
    assert first["status"] == 200
    assert first["body"] == {"ok": False, "token": "***"}
    assert "success_condition 'ok' gave false" in first["error"]
    assert [e["error"] for e in entries[1:]] == [None, None]


def test_retry_on_condition_retries_a_soft_failure_like_a_503(tmp_path):
    answers = iter([{"ok": False}, {"ok": False}])

    def flaky(got):
        body = next(answers, {"ok": True})
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    base = {"success_condition": "ok", "max_backoff_seconds": 0.01}
    with Server(flaky, nodelay=True) as server:
        config = {**base, "url": server.url("/users"), "retry_on_condition": True}
        run = run_inprocess(config, INPUT, tmp_path / "retried")
    assert run.exit_code == 0, run.stderr
    assert run.states[-1] == {"after": 3}
    assert len(server.requests) == 5  # record 1 three times, then 2 and 3
    assert run.summary["total"]["retries"] == 2

    answers = iter([{"ok": False}])
    with Server(flaky, nodelay=True) as server:
        run = run_inprocess({**base, "url": server.url("/users")}, INPUT, tmp_path / "not")
    assert run.exit_code == 1
    assert len(server.requests) == 1  # without retry_on_condition: failed at once


@pytest.mark.parametrize("text", ["<html>Gateway says hi</html>", ""])
def test_a_2xx_answer_that_is_not_json_fails_with_the_reason(tmp_path, text):
    reason = "its answer is not JSON, so success_condition cannot be read"
    with Server(soft_failing({1}, text), nodelay=True) as server:
        config = {"url": server.url("/users"), "success_condition": "ok"}
        run = run_inprocess(config, INPUT, tmp_path)

    assert run.exit_code == 1
    assert run.states == []
    [error] = run.errors
    assert f"answered 200 OK, but {reason}" in error


def test_a_condition_reads_an_answer_past_the_usual_72_kib(tmp_path):
    padding = "x" * (200 * 1024)

    def big(got):
        return 200, {"Content-Type": "application/json"}, json.dumps({"pad": padding, "ok": True})

    with Server(big, nodelay=True) as server:
        config = {"url": server.url("/users"), "success_condition": "ok"}
        run = run_inprocess(config, INPUT, tmp_path)

    assert run.exit_code == 0, run.stderr
    assert run.states[-1] == {"after": 3}


def test_a_syntax_error_is_one_line_at_start_up(tmp_path):
    run = run_inprocess(
        {"url": "http://127.0.0.1:9/users", "streams": {"users": {"success_condition": "ok =="}}},
        INPUT,
        tmp_path,
    )
    assert run.exit_code == 1
    assert run.traceback is None
    assert run.errors[-1].endswith(
        "stream 'users': setting 'success_condition' is not a valid JMESPath expression at "
        "character 6 (the expression ends too soon): 'ok =='"
    )


def test_a_dry_run_shows_the_answer_settings_it_would_apply(tmp_path):
    config = {
        "url": "http://127.0.0.1:9/users",
        "dry_run": True,
        "success_condition": "ok",
        "response_fields": {"remote_id": "id"},
        "save_responses": True,
        "response_file_path": str(tmp_path / "responses"),
    }
    run = run_inprocess(config, INPUT, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert (
        "dry run: stream 'users' would judge answers by success_condition 'ok'; "
        "response_fields remote_id='id'"
    ) in run.stderr


def test_response_fields_without_save_responses_are_said_to_do_nothing(tmp_path):
    with Server(soft_failing(set()), nodelay=True) as server:
        config = {"url": server.url("/users"), "response_fields": {"remote_id": "id"}}
        run = run_inprocess(config, INPUT, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "setting 'response_fields' has no effect until 'save_responses' is true" in run.stderr


def test_an_answer_past_8_mib_fails_its_condition_with_the_reason(tmp_path):
    huge = json.dumps({"ok": True, "pad": "x" * (9 * 1024 * 1024)})

    with Server(lambda got: (200, {"Content-Type": "application/json"}, huge)) as server:
        config = {"url": server.url("/users"), "success_condition": "ok"}
        run = run_inprocess(config, INPUT, tmp_path)

    assert run.exit_code == 1
    [error] = run.errors
    assert "answered 200 OK, but its answer is larger than 8 MiB, too large to judge: " in error
