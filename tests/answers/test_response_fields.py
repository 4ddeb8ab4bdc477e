"""response_fields: the id an API created for each record, written back per record.

The server creates an id for every record it receives (`rid-<id>`), answering one object
per request in single mode and a bulk answer (`items`, one entry per record) otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest
from support.inprocess import run_inprocess
from support.loopback import Server
from werkzeug import Response

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
SECRET = "s3cret-in-answers"


def people(n: int) -> str:
    lines = [{"type": "SCHEMA", "stream": "people", "schema": SCHEMA, "key_properties": ["id"]}]
    for i in range(1, n + 1):
        lines.append({"type": "RECORD", "stream": "people", "record": {"id": i, "name": f"p{i}"}})
    lines.append({"type": "STATE", "value": {"done": n}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def created(record: dict) -> dict:
    return {"result": {"id": f"rid-{record['id']}", "version": 1}, "token": SECRET}


def api(got):
    """The created object, or in bulk an entry per record (each with a secret to mask)."""
    body = json.loads(got.body)
    answer = {"items": [created(r) for r in body]} if isinstance(body, list) else created(body)
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


def read(folder, fmt: str) -> list[dict]:
    [file] = folder.iterdir()
    text = file.read_text()
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "json":
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


def run_saving(tmp_path, settings: dict, n: int, fmt: str = "jsonl"):
    folder = tmp_path / "responses"
    with Server(api, nodelay=True) as server:
        config = {
            "url": server.url("/people"),
            "save_responses": True,
            "response_file_path": str(folder),
            "response_file_format": fmt,
            "response_fields": {"remote_id": "result.id", "secret": "token"},
            "bearer_token": SECRET,
            **settings,
        }
        run = run_inprocess(config, people(n), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    return run, read(folder, fmt)


def test_single_mode_picks_each_records_fields_from_its_own_answer(tmp_path):
    run, entries = run_saving(tmp_path, {}, 3)
    assert entries == [
        {"stream": "people", "keys": {"id": i}, "status": 200, "error": None,
         "remote_id": f"rid-{i}", "secret": "***"}
        for i in (1, 2, 3)
    ]  # fmt: skip
    assert run.states == [{"done": 3}]


@pytest.mark.parametrize("mode", ["batch", "one"])
def test_batch_mode_picks_each_records_fields_from_its_entry(tmp_path, mode):
    settings = {"request_mode": mode, "batch_size": 3, "item_results": "items"}
    _, entries = run_saving(tmp_path, settings, 7)
    assert [(e["keys"]["id"], e["remote_id"]) for e in entries] == [
        (i, f"rid-{i}") for i in range(1, 8)
    ]
    assert {e["status"] for e in entries} == {200}


def test_csv_has_a_row_per_record_with_a_column_per_field(tmp_path):
    settings = {"request_mode": "batch", "batch_size": 2, "item_results": "items"}
    _, rows = run_saving(tmp_path, settings, 3, fmt="csv")
    assert rows == [
        {"stream": "people", "keys": json.dumps({"id": i}, separators=(",", ":")),
         "status": "200", "error": "", "remote_id": f"rid-{i}", "secret": "***"}
        for i in (1, 2, 3)
    ]  # fmt: skip


def test_json_holds_one_array_of_every_records_entry(tmp_path):
    settings = {"request_mode": "batch", "batch_size": 2, "item_results": "items"}
    _, entries = run_saving(tmp_path, settings, 5, fmt="json")
    assert [e["remote_id"] for e in entries] == [f"rid-{i}" for i in range(1, 6)]
    assert [e["keys"] for e in entries] == [{"id": i} for i in range(1, 6)]


def test_ids_line_up_with_records_when_requests_run_concurrently(tmp_path):
    settings = {
        "url": None,  # set below: one URL per record group, so requests overlap
        "request_mode": "batch",
        "batch_size": 2,
        "item_results": "items",
        "max_concurrency": 3,
    }
    folder = tmp_path / "responses"
    with Server(api, nodelay=True) as server:
        settings["url"] = server.url("/people/#{name}")
        config = {
            "save_responses": True,
            "response_file_path": str(folder),
            "response_fields": {"remote_id": "result.id"},
            **settings,
        }
        run = run_inprocess(config, people(9), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    entries = read(folder, "jsonl")
    assert sorted((e["keys"]["id"], e["remote_id"]) for e in entries) == [
        (i, f"rid-{i}") for i in range(1, 10)
    ]


def test_lines_keep_the_input_order_when_later_requests_answer_first(tmp_path):
    """The first request answers last: its line still comes first, the others after it.

    It is held until the other requests were answered and, for at most 2 s, until their
    lines are in the file (they are, when lines follow the answers instead of the input).
    """
    n = 4
    folder = tmp_path / "responses"
    others_answered = threading.Event()
    answered: list = []

    def lines_in_file() -> int:
        files = list(folder.iterdir()) if folder.exists() else []
        return sum(len(f.read_text().splitlines()) for f in files)

    def held_first(got):
        if json.loads(got.body)["id"] == 1:
            others_answered.wait(10)
            deadline = time.monotonic() + 2
            while lines_in_file() < n - 1 and time.monotonic() < deadline:
                time.sleep(0.02)
        answer = api(got)
        with server.lock:
            answered.append(got)
            if len(answered) == n - 1:  # every other request has its answer
                others_answered.set()
        return answer

    with Server(held_first, nodelay=True) as server:
        config = {
            "url": server.url("/people/#{id}"),
            "max_concurrency": n,
            "save_responses": True,
            "response_file_path": str(folder),
            "response_fields": {"remote_id": "result.id"},
        }
        run = run_inprocess(config, people(n), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    assert [e["keys"]["id"] for e in read(folder, "jsonl")] == list(range(1, n + 1))
    assert [e["remote_id"] for e in read(folder, "jsonl")] == [f"rid-{i}" for i in range(1, n + 1)]


def test_failed_items_keep_their_fields_and_carry_their_error(tmp_path):
    def partly(got):
        body = json.loads(got.body)
        items = [{"id": f"rid-{r['id']}", "ok": r["id"] != 2} for r in body]
        return 200, {"Content-Type": "application/json"}, json.dumps({"items": items})

    folder = tmp_path / "responses"
    with Server(partly, nodelay=True) as server:
        config = {
            "url": server.url("/people"),
            "request_mode": "batch",
            "batch_size": 3,
            "item_results": "items",
            "item_success_condition": "ok",
            "response_fields": {"remote_id": "id"},
            "fail_on_error": False,
            "save_responses": True,
            "response_file_path": str(folder),
        }
        run = run_inprocess(config, people(3), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    entries = read(folder, "jsonl")
    assert [e["remote_id"] for e in entries] == ["rid-1", "rid-2", "rid-3"]
    assert [e["error"] is None for e in entries] == [True, False, True]
    assert entries[1]["error"] == (
        'item 2 of 3 fails item_success_condition \'ok\': {"id":"rid-2","ok":false}'
    )


def test_a_failed_request_writes_a_line_per_record_with_its_error(tmp_path):
    def refused(got):
        return 422, {"Content-Type": "application/json"}, '{"message": "invalid"}'

    folder = tmp_path / "responses"
    with Server(refused, nodelay=True) as server:
        config = {
            "url": server.url("/people"),
            "request_mode": "batch",
            "batch_size": 2,
            "item_results": "items",
            "response_fields": {"remote_id": "id"},
            "fail_on_error": False,
            "save_responses": True,
            "response_file_path": str(folder),
        }
        run = run_inprocess(config, people(2), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    entries = read(folder, "jsonl")
    assert [(e["keys"], e["status"], e["remote_id"]) for e in entries] == [
        ({"id": 1}, 422, None),
        ({"id": 2}, 422, None),
    ]
    assert all("answered 422" in e["error"] for e in entries)


def test_response_fields_in_batch_mode_without_item_results_are_refused_at_start(tmp_path):
    config = {
        "url": "http://127.0.0.1:9/people",
        "request_mode": "batch",
        "response_fields": {"remote_id": "id"},
    }
    run = run_inprocess(config, people(1), tmp_path)
    assert run.exit_code == 1
    assert run.traceback is None
    assert run.errors[-1].endswith(
        "settings: setting 'response_fields' in request_mode 'batch' needs 'item_results': "
        "one answer covers many records, so each record's fields must come from its own "
        "entry (e.g. item_results: items)"
    )


def test_record_lines_are_in_the_file_when_the_state_after_them_is_printed(
    recorder, httpserver, live_target, tmp_path
):
    def bulk_answer(seen):
        items = [{"id": f"rid-{r['id']}"} for r in seen.json()]
        return Response(json.dumps({"items": items}), content_type="application/json")

    recorder.respond = bulk_answer
    folder = tmp_path / "responses"
    target = live_target(
        {
            "url": httpserver.url_for("/people"),
            "request_mode": "batch",
            "batch_size": 2,
            "batch_max_age_seconds": 0.2,
            "item_results": "items",
            "response_fields": {"remote_id": "id"},
            "save_responses": True,
            "response_file_path": str(folder),
        }
    )
    schema = {"type": "SCHEMA", "stream": "people", "schema": SCHEMA, "key_properties": ["id"]}

    def line(i: int) -> str:
        return json.dumps({"type": "RECORD", "stream": "people", "record": {"id": i, "name": "x"}})

    def saved() -> list[tuple[int, str]]:
        [file] = folder.iterdir()
        entries = [json.loads(text) for text in file.read_text().splitlines()]
        return [(e["keys"]["id"], e["remote_id"]) for e in entries]

    target.send(json.dumps(schema), line(1), line(2), json.dumps({"type": "STATE", "value": 2}))
    assert target.next_line() == "2"
    assert saved() == [(1, "rid-1"), (2, "rid-2")]
    target.send(line(3), json.dumps({"type": "STATE", "value": 3}))  # sent by its age
    assert target.next_line() == "3"
    assert saved() == [(1, "rid-1"), (2, "rid-2"), (3, "rid-3")]
    assert target.finish() == 0
