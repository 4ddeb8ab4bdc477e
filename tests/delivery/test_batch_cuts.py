"""How batches are cut: by batch_size, batch_max_bytes, batch_max_age_seconds and the end of
input, never by a STATE; and how many groups wait in memory (max_open_batches)."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.inprocess import run_inprocess

SCHEMA = {
    "type": "SCHEMA",
    "stream": "items",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "group": {"type": "string"},
            "text": {"type": "string"},
        },
    },
}


def record(i: int, text: str = "", group: str = "a") -> str:
    return json.dumps(
        {"type": "RECORD", "stream": "items", "record": {"id": i, "group": group, "text": text}}
    )


def state(n: int) -> str:
    return json.dumps({"type": "STATE", "value": {"n": n}})


def lines(*parts: str) -> str:
    return "\n".join([json.dumps(SCHEMA), *parts]) + "\n"


def ids(body: bytes) -> list[int]:
    return [item["id"] for item in json.loads(body)]


def test_a_state_after_every_record_cuts_no_batch(recorder, httpserver, tmp_path):
    data = lines(*[line for i in range(1, 51) for line in (record(i), state(i))])
    config = {"url": httpserver.url_for("/items"), "request_mode": "batch", "batch_size": 20}
    run = run_inprocess(config, data, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert [ids(seen.body) for seen in recorder.requests] == [
        list(range(1, 21)),
        list(range(21, 41)),
        list(range(41, 51)),
    ]
    # A STATE is printed once the records before it were delivered: the one held when a
    # request ends (19, 39), one that follows a full batch (20, 40) at once, and the last.
    assert run.states == [{"n": 19}, {"n": 20}, {"n": 39}, {"n": 40}, {"n": 50}]


sizes = st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=sizes, cap=st.integers(min_value=40, max_value=400), batch_size=st.integers(1, 8))
def test_no_body_passes_batch_max_bytes_and_each_is_as_full_as_it_allows(
    recorder, httpserver, texts, cap, batch_size
):
    recorder.requests.clear()
    items = [json.dumps({"id": i, "group": "a", "text": "x" * n}) for i, n in enumerate(texts)]
    data = lines(*[record(i, "x" * n) for i, n in enumerate(texts)], state(1))
    config = {
        "url": httpserver.url_for("/items"),
        "request_mode": "batch",
        "batch_size": batch_size,
        "batch_max_bytes": cap,
        "fail_on_error": False,
    }
    with tempfile.TemporaryDirectory() as folder:
        run = run_inprocess(config, data, Path(folder))
    assert run.exit_code == 0, run.stderr
    too_big = [i for i, item in enumerate(items) if len(item) + 2 > cap]  # "[" item "]"
    bodies = [seen.body for seen in recorder.requests]
    assert all(len(body) <= cap for body in bodies)
    sent = [ids(body) for body in bodies]
    assert [i for batch in sent for i in batch] == [
        i for i in range(len(items)) if i not in too_big
    ]
    for batch, following in itertools.pairwise(sent):
        # Cut only when full, or when the next record would not fit.
        body = 2 + sum(len(items[i]) for i in batch) + len(batch) - 1
        assert len(batch) == batch_size or body + 1 + len(items[following[0]]) > cap
    assert len(too_big) == 0 or "over batch_max_bytes" in run.stderr
    assert run.states == [{"n": 1}]


def test_one_mode_sends_as_many_requests_as_batch_max_bytes_needs(recorder, httpserver, tmp_path):
    data = lines(*[record(i, "y" * 30) for i in range(10)])
    config = {"url": httpserver.url_for("/items"), "request_mode": "one", "batch_max_bytes": 200}
    run = run_inprocess(config, data, tmp_path)
    assert run.exit_code == 0, run.stderr
    bodies = [seen.body for seen in recorder.requests]
    assert len(bodies) > 1
    assert all(len(body) <= 200 for body in bodies)
    assert [i for body in bodies for i in ids(body)] == list(range(10))


def test_form_data_bodies_stay_under_batch_max_bytes(recorder, httpserver, tmp_path):
    data = lines(*[record(i, "z" * (i * 7)) for i in range(12)])
    config = {
        "url": httpserver.url_for("/items"),
        "request_mode": "batch",
        "body_format": "form_data",
        "batch_max_bytes": 900,
    }
    run = run_inprocess(config, data, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert len(recorder.requests) > 1
    assert all(len(seen.body) <= 900 for seen in recorder.requests)
    sent = b"".join(seen.body for seen in recorder.requests)
    assert all(b"z" * (i * 7) in sent for i in range(12))


def test_an_oversized_record_stops_the_run_with_one_line(recorder, httpserver, tmp_path):
    data = lines(record(1), record(2, "w" * 500), record(3))
    config = {"url": httpserver.url_for("/items"), "request_mode": "batch", "batch_max_bytes": 200}
    run = run_inprocess(config, data, tmp_path)
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if "batch_max_bytes" in line]
    assert "input line 3" in line and "(200)" in line and "-byte request body" in line
    assert [ids(seen.body) for seen in recorder.requests] == [[1]]  # read before it: delivered


def test_an_oversized_record_goes_to_the_error_file(recorder, httpserver, tmp_path):
    errors = tmp_path / "errors.jsonl"
    data = lines(record(1), record(2, "w" * 500), record(3), state(3))
    config = {
        "url": httpserver.url_for("/items"),
        "request_mode": "batch",
        "batch_max_bytes": 200,
        "fail_on_error": False,
        "error_file_path": str(errors),
    }
    run = run_inprocess(config, data, tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    [entry] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert entry["record"]["id"] == 2 and entry["line"] == 3
    assert "over batch_max_bytes (200)" in entry["error"]
    assert [ids(seen.body) for seen in recorder.requests] == [[1, 3]]
    assert run.states == [{"n": 3}]


def test_an_old_partial_batch_is_sent_while_the_tap_is_silent(recorder, httpserver, live_target):
    config = {
        "url": httpserver.url_for("/items"),
        "request_mode": "batch",
        "batch_size": 100,
        "batch_max_age_seconds": 0.2,
    }
    target = live_target(config)
    target.send(json.dumps(SCHEMA), record(1), record(2), record(3), state(3), record(4))
    # Stdin stays open: only the age can send records 1 to 4 and release the STATE.
    assert json.loads(target.next_line()) == {"n": 3}
    assert [ids(seen.body) for seen in recorder.requests] == [[1, 2, 3, 4]]
    target.send(record(5), state(5))
    assert target.finish() == 0, target.stderr
    assert [ids(seen.body) for seen in recorder.requests][-1] == [5]
    assert [json.loads(line) for line in target.lines] == [{"n": 3}, {"n": 5}]


def test_the_oldest_group_is_sent_when_max_open_batches_is_reached(recorder, httpserver, tmp_path):
    groups = "abcadb"
    data = lines(*[record(i, group=g) for i, g in enumerate(groups)], state(6))
    config = {
        "url": httpserver.url_for("/g/#{group}"),
        "request_mode": "batch",
        "batch_size": 10,
        "max_open_batches": 2,
    }
    run = run_inprocess(config, data, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert [(seen.path, ids(seen.body)) for seen in recorder.requests] == [
        ("/g/a", [0]),  # c opens a third group: a, the oldest, goes
        ("/g/b", [1]),  # a again
        ("/g/c", [2]),  # d
        ("/g/a", [3]),  # b
        ("/g/d", [4]),  # the end of input, oldest first
        ("/g/b", [5]),
    ]
    assert run.states == [{"n": 6}]


@pytest.mark.parametrize("setting", ["batch_max_bytes", "max_open_batches"])
def test_settings_refuse_zero(httpserver, tmp_path, setting):
    config = {"url": httpserver.url_for("/items"), "request_mode": "batch", setting: 0}
    run = run_inprocess(config, lines(record(1)), tmp_path)
    assert run.exit_code != 0
    assert setting in run.stderr
