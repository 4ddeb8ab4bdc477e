"""The order guarantee of hard deletes, over generated inputs and settings.

Whatever the interleaving of records and deletes, the request mode, batch size, templated
URLs and concurrency: a delete request is received only once every request carrying an
earlier record of its stream was answered, and a record only once every earlier delete was
answered (deletes in a row may be in flight together). Every record arrives once; the
summary counts the deletes; the last STATE is printed. The target runs in-process against
a real loopback server.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.inprocess import run_inprocess
from support.loopback import Server

DELETE_PATH = re.compile(r"^/d/\d+/(\d+)$")
SCHEMA = {
    "type": "SCHEMA",
    "stream": "s",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "n": {"type": "integer"},
            "_sdc_deleted_at": {"type": ["null", "string"]},
        },
    },
    "key_properties": ["id"],
}

ops = st.lists(
    st.tuples(st.sampled_from(["upsert", "delete"]), st.integers(1, 3), st.booleans()),
    min_size=1,
    max_size=16,
)
choices = st.fixed_dictionaries(
    {
        "request_mode": st.sampled_from(["single", "batch"]),
        "batch_size": st.integers(1, 4),
        "max_concurrency": st.integers(1, 3),
        "templated": st.booleans(),
    }
)


def singer_input(steps: list[tuple[str, int, bool]]) -> tuple[str, list[dict]]:
    """The input text and its records; each record's `n` is its place among them."""
    messages, records = [SCHEMA], []
    for n, (kind, key, then_state) in enumerate(steps):
        record = {"id": key, "n": n}
        if kind == "delete":
            record["_sdc_deleted_at"] = "2026-11-28T10:00:00Z"
        records.append(record)
        messages.append({"type": "RECORD", "stream": "s", "record": record})
        if then_state:
            messages.append({"type": "STATE", "value": {"after": n}})
    return "".join(json.dumps(m) + "\n" for m in messages), records


def ns_records(body: object) -> list[dict]:
    """The records of a body: a batch's array, or the one record of a single request."""
    return body if isinstance(body, list) else [body]


def carriers(server: Server) -> dict[int, object]:
    """The request that carried each record, by the record's `n`; each record once."""
    found: dict[int, object] = {}
    for got in server.requests:
        if got.method == "DELETE":
            ns = [int(DELETE_PATH.match(got.path).group(1))]
            assert got.body == b"", got
        else:
            body = json.loads(got.body)
            ns = [r["n"] for r in ns_records(body)]
            assert all("_sdc_deleted_at" not in r for r in ns_records(body))
        for n in ns:
            assert n not in found, f"record {n} was sent twice"
            found[n] = got
    return found


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops, chosen=choices)
def test_no_delete_overtakes_an_earlier_record_nor_a_record_an_earlier_delete(
    tmp_path_factory, steps, chosen
):
    text, records = singer_input(steps)
    with Server(nodelay=True) as server:
        config = {
            "url": server.url("/u/#{id}" if chosen["templated"] else "/u"),
            "request_mode": chosen["request_mode"],
            "batch_size": chosen["batch_size"],
            "max_concurrency": chosen["max_concurrency"],
            "hard_delete": True,
            "delete_url": server.url("/d/#{id}/#{n}"),
        }
        run = run_inprocess(config, text, tmp_path_factory.mktemp("run"))

    assert run.exit_code == 0, run.stderr
    assert run.traceback is None
    sent = carriers(server)
    assert sorted(sent) == [r["n"] for r in records]
    deleted = {r["n"] for r in records if "_sdc_deleted_at" in r}
    assert {n for n, got in sent.items() if got.method == "DELETE"} == deleted
    for later in range(len(records)):
        for earlier in range(later):
            first, second = sent[earlier], sent[later]
            if (earlier in deleted) != (later in deleted):  # deletes may overlap each other
                assert first.done <= second.at, (
                    f"record {later} ({second.method} {second.path}) arrived before the "
                    f"answer to record {earlier} ({first.method} {first.path})"
                )
    counts = run.summary["total"]
    assert (counts["received"], counts["delivered"]) == (len(records), len(records))
    assert counts["deletes"] == len(deleted)
    given_states = [json.loads(line) for line in text.splitlines() if '"STATE"' in line]
    if given_states:
        assert run.states[-1] == given_states[-1]["value"]
