"""The run summary adds up, once, whatever ends the run.

Every record received is counted exactly once as delivered, failed, interrupted or not
sent: received == delivered + failed + interrupted + not_sent, per stream and in total.
"""

from __future__ import annotations

import signal
import time

import pytest
from support.record_paths import lines, no_traceback, record, schema, state, the_summary
from support.run import NO_RETRY, RUN_TIMEOUT, run_target
from werkzeug import Response


def refuse(*ids: int):
    """A server answer: 400 for the records with these ids, 200 for the others."""

    def respond(seen):
        body = seen.json()
        sent = {r["id"] for r in body} if isinstance(body, list) else {body["id"]}
        return Response("refused", status=400) if sent & set(ids) else None

    return respond


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_a_failure_among_concurrent_requests_leaves_every_record_counted(
    recorder, httpserver, tmp_path, mode
):
    recorder.respond = refuse(3)
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "request_mode": mode,
        "batch_size": 1,
        "max_concurrency": 4,
        **NO_RETRY,
    }
    text = lines(schema(), *(record(i) for i in range(1, 21)), state(1))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert result.states == []
    no_traceback(result.stderr)
    counts = the_summary(result.stderr)["total"]
    assert counts["failed"] == 1
    assert counts["delivered"] == len(recorder.requests) - 1
    summary_lines = [line for line in result.stderr.splitlines() if "summary: " in line]
    assert len(summary_lines) == 1
    assert f"{counts['not_sent']} not sent" in summary_lines[0]


def test_a_fatal_failure_counts_other_streams_pending_records_as_not_sent(
    recorder, httpserver, tmp_path
):
    recorder.respond = refuse(1)
    config = {
        "url": httpserver.url_for("/x"),
        "request_mode": "batch",
        "batch_size": 2,
        **NO_RETRY,
    }
    text = lines(
        schema("a"),
        schema("b"),
        record(10, "b"),
        record(1, "a"),
        record(2, "a"),  # the batch of a is full: sent, refused, the run stops
        record(11, "b"),
    )

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    streams = the_summary(result.stderr)["streams"]
    assert (streams["a"]["received"], streams["a"]["failed"]) == (2, 2)
    assert (streams["b"]["received"], streams["b"]["not_sent"]) == (1, 1)
    assert recorder.bodies == [[record(1)["record"], record(2)["record"]]]


def test_a_bad_input_line_ends_with_the_records_before_it_delivered_and_counted(
    recorder, httpserver, tmp_path
):
    config = {"url": httpserver.url_for("/users"), "request_mode": "batch", "batch_size": 10}
    text = lines(schema(), record(1), record(2), record(3), "{not json")

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert "input line 5" in result.stderr
    counts = the_summary(result.stderr)["total"]
    assert (counts["received"], counts["delivered"]) == (3, 3)


def test_a_dry_run_counts_every_record_as_not_sent(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users"), "dry_run": True, "request_mode": "batch"}
    text = lines(schema(), record(1), record(2), state(1), record(3))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    counts = the_summary(result.stderr)["total"]
    assert (counts["received"], counts["delivered"], counts["not_sent"]) == (3, 0, 3)


GROUPED = {**schema()["schema"]["properties"], "team": {"type": "string"}}


@pytest.mark.parametrize("max_concurrency", [1, 3])
def test_a_failing_schema_change_delivers_the_pending_records_first(
    recorder, httpserver, tmp_path, max_concurrency
):
    """The new SCHEMA lacks the field the URL uses: refused, after the records before it."""
    config = {
        "url": httpserver.url_for("/teams/#{team}"),
        "request_mode": "batch",
        "batch_size": 100,
        "max_concurrency": max_concurrency,
    }
    text = lines(
        schema("users", GROUPED),
        schema("admins", GROUPED),
        record(1, team="red"),
        record(2, team="red"),
        record(3, "admins", team="blue"),
        record(4, team="red"),
        schema("users"),  # no 'team' any more
        record(5),
        state(1),
    )

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert result.states == []
    [error] = [line for line in result.stderr.splitlines() if "#{team}" in line]
    assert "input line 7" in error
    no_traceback(result.stderr)
    sent = sorted((seen.path, tuple(r["id"] for r in seen.json())) for seen in recorder.requests)
    assert sent == [("/teams/blue", (3,)), ("/teams/red", (1, 2, 4))]
    counts = the_summary(result.stderr)["total"]
    assert (counts["received"], counts["delivered"]) == (4, 4)


def test_a_stop_counts_the_pending_records_as_not_sent(recorder, httpserver, live_target):
    """SIGTERM with a batch pending: not sent, and the summary still adds up."""
    config = {
        "url": httpserver.url_for("/x"),
        "request_mode": "batch",
        "batch_size": 100,
        "streams": {"events": {"request_mode": "single"}},
    }
    target = live_target(config)
    target.send(lines(schema("users"), schema("events"), record(1), record(2), record(3)))
    target.send(lines(record(7, "events")))  # its request shows every line before was read
    deadline = time.monotonic() + RUN_TIMEOUT
    while not recorder.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    target.proc.send_signal(signal.SIGTERM)

    assert target.wait() == 1
    streams = the_summary(target.stderr)["streams"]
    assert (streams["users"]["received"], streams["users"]["not_sent"]) == (3, 3)
    assert (streams["events"]["received"], streams["events"]["delivered"]) == (1, 1)
