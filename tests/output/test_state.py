"""STATE lines: bare JSON on stdout, as soon as every record before them was delivered."""

import json
from decimal import Decimal

import pytest
from support.run import NO_RETRY, data_file, run_target
from support.singer_lines import ID_SCHEMA as SCHEMA
from support.singer_lines import id_record as record
from support.singer_lines import id_state as state
from werkzeug import Response


def bookmark(i):
    return {"bookmarks": {"users": {"id": i}}}


def ids_of(seen):
    body = seen.json()
    return [r["id"] for r in body] if isinstance(body, list) else [body["id"]]


def fail_id(failing):
    def respond(seen):
        if failing in ids_of(seen):
            return Response("boom", status=500)
        return None

    return respond


# Emitted during the run, not only at the end


def test_state_is_emitted_after_each_delivery_while_input_is_still_open(
    recorder, httpserver, live_target
):
    target = live_target({"url": httpserver.url_for("/users")})
    printed_at_request = []
    recorder.on_request = lambda seen: printed_at_request.append(list(target.lines))

    target.send(SCHEMA, record(1), state(1))
    assert json.loads(target.next_line()) == bookmark(1)
    assert len(recorder.requests) == 1

    target.send(record(2), record(3), state(3))
    assert json.loads(target.next_line()) == bookmark(3)
    assert len(recorder.requests) == 3

    assert target.finish() == 0, target.stderr
    assert target.lines == [json.dumps(bookmark(1)), json.dumps(bookmark(3))]
    # When record 2 reached the server, the STATE after record 1 had already been printed.
    assert printed_at_request[0] == []
    assert [json.loads(line) for line in printed_at_request[1]] == [bookmark(1)]


def test_state_after_a_partial_batch_is_emitted_without_waiting_for_more_records(
    recorder, httpserver, live_target
):
    config = {
        "url": httpserver.url_for("/users"),
        "request_mode": "batch",
        "batch_size": 2,
        "batch_max_age_seconds": 0.2,
    }
    target = live_target(config)

    target.send(SCHEMA, record(1), record(2), state(2))  # a full batch, then STATE
    assert json.loads(target.next_line()) == bookmark(2)
    assert [ids_of(seen) for seen in recorder.requests] == [[1, 2]]

    # Half a batch, then STATE and the tap is silent: the batch goes once it is 0.2 s old.
    target.send(record(3), state(3))
    assert json.loads(target.next_line()) == bookmark(3)
    assert [ids_of(seen) for seen in recorder.requests] == [[1, 2], [3]]

    assert target.finish() == 0, target.stderr


def test_state_waits_for_the_delivery_of_records_before_it(recorder, httpserver, live_target):
    config = {
        "url": httpserver.url_for("/users"),
        "request_mode": "batch",
        "batch_size": 10,
        "batch_max_age_seconds": 0.2,  # the tap is silent after STATE 1: the batch goes
    }
    target = live_target(config)
    printed_at_request = []
    recorder.on_request = lambda seen: printed_at_request.append(list(target.lines))

    target.send(SCHEMA, record(1), state(1))
    assert json.loads(target.next_line()) == bookmark(1)
    assert printed_at_request == [[]]
    assert target.finish() == 0, target.stderr


# Multiple STATE messages


@pytest.mark.parametrize(
    "settings",
    [{"request_mode": "single"}, {"request_mode": "batch", "batch_size": 2}],
    ids=["single", "batch"],
)
def test_multiple_states_are_emitted_in_order(recorder, httpserver, tmp_path, settings):
    config = {"url": httpserver.url_for("/users"), **settings}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.states == [bookmark(0), bookmark(1), bookmark(3), bookmark(4), bookmark(5)]
    assert sum(len(ids_of(seen)) for seen in recorder.requests) == 5


def test_one_mode_emits_the_last_state_after_the_single_request(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users"), "request_mode": "one"}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    # STATE 0 precedes every record; the others wait for the one request, which ends the run.
    emitted = [s["bookmarks"]["users"]["id"] for s in result.states]
    assert emitted[0] == 0
    assert emitted[-1] == 5
    assert emitted == sorted(set(emitted))


def test_states_are_bare_json_lines(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users")}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        value = json.loads(line)
        assert set(value) == {"bookmarks"}


# Never past a failed record


@pytest.mark.parametrize(
    ("settings", "failing", "expected"),
    [
        ({"request_mode": "single"}, 2, [bookmark(0), bookmark(1)]),
        ({"request_mode": "single"}, 4, [bookmark(0), bookmark(1), bookmark(3)]),
        ({"request_mode": "batch", "batch_size": 2}, 3, [bookmark(0), bookmark(1)]),
        # A STATE cuts no batch: [1, 2, 3] is delivered, [4, 5] fails.
        ({"request_mode": "batch", "batch_size": 3}, 4, [bookmark(0), bookmark(1), bookmark(3)]),
        ({"request_mode": "one"}, 5, [bookmark(0)]),
    ],
    ids=["single-2", "single-4", "batch2-3", "batch3-4", "one-5"],
)
def test_no_state_is_emitted_past_a_failed_record(
    recorder, httpserver, tmp_path, settings, failing, expected
):
    recorder.respond = fail_id(failing)
    config = {"url": httpserver.url_for("/users"), **settings, **NO_RETRY}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode != 0
    assert result.states == expected


# Numbers in STATE


def test_numbers_in_state_come_out_as_sent(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/x")}
    result = run_target(config, data_file("state_numbers.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.states == [
        {"bookmarks": {"x": {"v": Decimal("1.5")}}},
        {
            "bookmarks": {
                "x": {
                    "v": Decimal("1234567890.123456789012"),
                    "big": 123456789012345678901234567890,
                }
            }
        },
    ]
    assert "1234567890.123456789012" in result.stdout
    assert "123456789012345678901234567890" in result.stdout
    assert '"v": 1.5' in result.stdout or '"v":1.5' in result.stdout
