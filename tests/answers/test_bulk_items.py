"""item_results and item_success_condition: a bulk API's one answer with a result per record.

The loopback server plays an Elasticsearch-style `_bulk` endpoint: it answers 200 with
`{"errors": ..., "items": [...]}`, one entry per record of the body, in order; a record
with `"fail": true` gets `{"status": 400, "error": ...}`, the others `{"status": 201}`.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.inprocess import run_inprocess
from support.loopback import Server

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "fail": {"type": "boolean"}},
}
ITEMS = {"item_results": "items", "item_success_condition": "status < `300`"}


def bulk_input(fails: list[bool], *, states: bool = True) -> str:
    """Records id 1..n, `fail` as given, a STATE after each naming the record before it."""
    lines = [{"type": "SCHEMA", "stream": "docs", "schema": SCHEMA, "key_properties": ["id"]}]
    for i, fail in enumerate(fails, start=1):
        lines.append({"type": "RECORD", "stream": "docs", "record": {"id": i, "fail": fail}})
        if states:
            lines.append({"type": "STATE", "value": {"after": i}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def bulk(got):
    """One entry per record of the body (a list, or one object in single mode)."""
    body = json.loads(got.body)
    records = body if isinstance(body, list) else [body]
    items = [
        {"_id": f"doc-{r['id']}", "status": 400, "error": {"type": "mapper_parsing_exception"}}
        if r["fail"]
        else {"_id": f"doc-{r['id']}", "status": 201}
        for r in records
    ]
    answer = {"errors": any(r["fail"] for r in records), "items": items}
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


TWO_OF_TEN = [i in (4, 9) for i in range(1, 11)]


def test_two_failed_items_of_ten_go_to_the_error_file_with_their_entries(tmp_path):
    errors = tmp_path / "errors.jsonl"
    with Server(bulk, nodelay=True) as server:
        config = {
            "url": server.url("/_bulk"),
            "request_mode": "batch",
            "batch_size": 10,
            "fail_on_error": False,
            "error_file_path": str(errors),
            **ITEMS,
        }
        run = run_inprocess(config, bulk_input(TWO_OF_TEN), tmp_path / "run")

    assert run.exit_code == 0, run.stderr
    assert len(server.requests) == 1
    entries = read_lines(errors)
    assert [e["record"] for e in entries] == [{"id": 4, "fail": True}, {"id": 9, "fail": True}]
    assert [e["item"] for e in entries] == [4, 9]
    assert entries[0]["answer"] == (
        '{"_id":"doc-4","status":400,"error":{"type":"mapper_parsing_exception"}}'
    )
    assert entries[0]["error"] == (
        f"POST {server.url('/_bulk')} answered 200 OK, but item 4 of 10 fails "
        "item_success_condition 'status < `300`': "
        '{"_id":"doc-4","status":400,"error":{"type":"mapper_parsing_exception"}}'
    )
    assert {e["status"] for e in entries} == {200}
    stream = run.summary["streams"]["docs"]
    assert (stream["received"], stream["delivered"], stream["failed"]) == (10, 8, 2)
    assert run.states[-1] == {"after": 10}  # both failures are recorded: STATE goes on


def test_with_fail_on_error_the_run_stops_quoting_the_entry_and_naming_the_record(tmp_path):
    with Server(bulk, nodelay=True) as server:
        config = {
            "url": server.url("/_bulk"),
            "request_mode": "batch",
            "batch_size": 5,
            **ITEMS,
        }
        run = run_inprocess(config, bulk_input(TWO_OF_TEN), tmp_path)

    assert run.exit_code == 1
    assert run.traceback is None
    [error] = run.errors
    assert error.endswith(
        f"stream 'docs': POST {server.url('/_bulk')} answered 200 OK, but item 4 of 5 fails "
        "item_success_condition 'status < `300`': "
        '{"_id":"doc-4","status":400,"error":{"type":"mapper_parsing_exception"}} '
        '(record {"id":4})'
    )
    assert run.states == []  # the first batch holds record 4: no STATE passes it
    assert len(server.requests) == 1
    totals = run.summary["total"]
    # The run stops at the first batch's answer: the records after it are not read.
    assert (totals["received"], totals["delivered"], totals["failed"]) == (5, 4, 1)


def test_several_failed_items_are_counted_in_the_stopping_line(tmp_path):
    with Server(bulk, nodelay=True) as server:
        config = {"url": server.url("/_bulk"), "request_mode": "one", **ITEMS}
        run = run_inprocess(config, bulk_input([True, False, True, True]), tmp_path)

    assert run.exit_code == 1
    [error] = run.errors
    assert "item 1 of 4 fails" in error
    assert error.endswith('(record {"id":1}); 2 more items failed')


def test_a_list_of_another_length_fails_the_whole_request(tmp_path):
    def short(got):
        return 200, {"Content-Type": "application/json"}, '{"items": [{"status": 201}]}'

    errors = tmp_path / "errors.jsonl"
    with Server(short, nodelay=True) as server:
        config = {
            "url": server.url("/_bulk"),
            "request_mode": "batch",
            "batch_size": 3,
            "fail_on_error": False,
            "error_file_path": str(errors),
            **ITEMS,
        }
        run = run_inprocess(config, bulk_input([False] * 3), tmp_path / "run")

    assert run.exit_code == 0, run.stderr
    entries = read_lines(errors)
    assert len(entries) == 3
    assert entries[0]["error"].endswith(
        "answered 200 OK, but item_results 'items' gave a list of 1 entries, not one entry "
        'per record (3): {"items": [{"status": 201}]}'
    )
    assert run.summary["total"]["failed"] == 3


def test_the_whole_answer_may_also_be_checked_first(tmp_path):
    """success_condition on the answer, then item_success_condition on each entry."""
    with Server(bulk, nodelay=True) as server:
        config = {
            "url": server.url("/_bulk"),
            "request_mode": "batch",
            "batch_size": 2,
            "success_condition": "items",
            **ITEMS,
        }
        run = run_inprocess(config, bulk_input([False, False]), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert run.summary["total"]["delivered"] == 2


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fails=st.lists(st.booleans(), max_size=25),
    mode=st.sampled_from(["single", "batch", "one"]),
    batch_size=st.integers(1, 6),
    concurrency=st.integers(1, 3),
    stop_on_error=st.booleans(),
)
def test_every_record_is_delivered_or_failed_and_the_error_file_holds_the_failed(
    tmp_path_factory, fails, mode, batch_size, concurrency, stop_on_error
):
    folder = tmp_path_factory.mktemp("bulk")
    errors = folder / "errors.jsonl"
    with Server(bulk, nodelay=True) as server:
        config = {
            "url": server.url("/_bulk"),
            "request_mode": mode,
            "batch_size": batch_size,
            "max_concurrency": concurrency,
            "fail_on_error": stop_on_error,
            "error_file_path": str(errors),
            **ITEMS,
        }
        run = run_inprocess(config, bulk_input(fails), folder / "run")
        sent = [r for got in server.requests for r in _records(got.body)]

    assert run.traceback is None
    totals = run.summary["total"] if fails else {"received": 0}
    assert totals["received"] == len(fails)
    if not fails:
        return
    counted = totals["delivered"] + totals["failed"] + totals["interrupted"] + totals["not_sent"]
    assert counted == len(fails)
    failed_sent = [r for r in sent if r["fail"]]
    assert totals["delivered"] == len(sent) - len(failed_sent)
    assert totals["failed"] == len(failed_sent)
    if stop_on_error:
        assert run.exit_code == (1 if failed_sent else 0)
        assert not errors.exists()
        if failed_sent:  # no STATE passes the first failed record
            first = min(r["id"] for r in failed_sent)
            assert all(s["after"] < first for s in run.states)
    else:
        assert run.exit_code == 0, run.stderr
        assert totals["delivered"] + totals["failed"] == len(fails)
        assert sorted(e["record"]["id"] for e in read_lines(errors)) == sorted(
            r["id"] for r in failed_sent
        )
        assert run.states[-1] == {"after": len(fails)}


def _records(body: bytes) -> list[dict]:
    parsed = json.loads(body)
    return parsed if isinstance(parsed, list) else [parsed]
