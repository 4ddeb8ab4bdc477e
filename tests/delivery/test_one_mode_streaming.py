"""request_mode one: every record of a stream (per rendered URL) in one streamed request.

Behaviour only: large inputs come out as one complete, ordered body; a retried request
resends the identical whole body; memory stays bounded (peak RSS, not speed).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys

import pytest
from support.run import RUN_TIMEOUT, TARGET, clean_env, run_target, write_config
from werkzeug import Response

SCHEMA = {
    "type": "SCHEMA",
    "stream": "events",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "tenant": {"type": "string"},
            "name": {"type": "string"},
            "amount": {"type": "number"},
        },
    },
    "key_properties": ["id"],
}
PAD = "x" * 150  # ~200-byte records: 50,000 of them make a body past the 8 MB spool size


def event(i: int, pad: str = PAD) -> dict:
    return {"id": i, "tenant": f"t{i % 3}", "name": f"event {i} {pad}", "amount": i + 0.25}


def events_input(n: int, pad: str = PAD, state_every: int = 10_000) -> bytes:
    lines = [json.dumps(SCHEMA)]
    for i in range(1, n + 1):
        lines.append(json.dumps({"type": "RECORD", "stream": "events", "record": event(i, pad)}))
        if i % state_every == 0:
            lines.append(json.dumps({"type": "STATE", "value": {"events": i}}))
    return ("\n".join(lines) + "\n").encode()


def fail_first(status: int = 503):
    """A respond hook answering `status` to the first request, 200 afterwards."""
    calls = []

    def respond(seen):
        calls.append(seen)
        if len(calls) == 1:
            return Response("try again", status=status)
        return None

    return respond


FAST_RETRY = {"max_retries": 2, "max_backoff_seconds": 0}


def test_one_mode_sends_50000_records_as_one_json_array_in_input_order(
    recorder, httpserver, tmp_path
):
    config = {"url": httpserver.url_for("/events"), "request_mode": "one"}
    result = run_target(config, events_input(50_000), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert seen.header("Content-Type") == "application/json"
    assert len(seen.body) > 8 * 1024 * 1024  # past the size where the body spools to disk
    assert int(seen.header("Content-Length")) == len(seen.body)
    records = json.loads(seen.body)
    assert len(records) == 50_000
    assert records == [event(i) for i in range(1, 50_001)]
    assert result.states == [{"events": 50_000}]


def test_one_mode_csv_has_one_header_and_every_record_in_order(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/events"), "request_mode": "one", "body_format": "csv"}
    result = run_target(config, events_input(50_000), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert seen.header("Content-Type") == "text/csv"
    rows = list(csv.reader(io.StringIO(seen.body.decode(), newline="")))
    assert rows[0] == ["id", "tenant", "name", "amount"]
    assert len(rows) == 50_001
    assert rows.count(rows[0]) == 1
    assert rows[1] == ["1", "t1", f"event 1 {PAD}", "1.25"]
    assert [int(row[0]) for row in rows[1:]] == list(range(1, 50_001))
    assert rows[-1] == ["50000", "t2", f"event 50000 {PAD}", "50000.25"]


def test_one_mode_with_a_url_template_sends_one_ordered_request_per_url(
    recorder, httpserver, tmp_path
):
    config = {"url": httpserver.url_for("/tenants/#{tenant}"), "request_mode": "one"}
    result = run_target(config, events_input(3_000, pad="", state_every=1_000), tmp_path)

    assert result.returncode == 0, result.stderr
    by_path = {seen.path: seen.json() for seen in recorder.requests}
    assert sorted(by_path) == ["/tenants/t0", "/tenants/t1", "/tenants/t2"]
    for t in range(3):
        ids = [r["id"] for r in by_path[f"/tenants/t{t}"]]
        assert ids == [i for i in range(1, 3_001) if i % 3 == t]
    assert result.states[-1] == {"events": 3_000}


def test_one_mode_nested_attribute_with_static_fields(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/events"),
        "request_mode": "one",
        "send_as_nested_attribute": True,
        "nested_attribute_name": "items",
        "static_fields": {"source": "test"},
    }
    result = run_target(config, events_input(20_000, pad="p" * 20), tmp_path)

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    body = seen.json()
    assert set(body) == {"items", "source"}
    assert body["source"] == "test"
    assert [r["id"] for r in body["items"]] == list(range(1, 20_001))


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_retried_one_mode_request_resends_the_whole_identical_body(
    recorder, httpserver, tmp_path, compression
):
    recorder.respond = fail_first(503)
    config = {
        "url": httpserver.url_for("/events"),
        "request_mode": "one",
        "compression": compression,
        **FAST_RETRY,
    }
    result = run_target(config, events_input(50_000), tmp_path)

    assert result.returncode == 0, result.stderr
    first, second = recorder.requests
    assert len(first.body) > 0
    assert first.body == second.body, "the retry did not resend the same body"
    assert first.header("Content-Length") == second.header("Content-Length")
    body = gzip.decompress(second.body) if compression == "gzip" else second.body
    assert json.loads(body) == [event(i) for i in range(1, 50_001)]
    assert result.states == [{"events": 50_000}]


def test_a_retried_one_mode_csv_request_resends_the_header_and_every_line(
    recorder, httpserver, tmp_path
):
    recorder.respond = fail_first(502)
    config = {
        "url": httpserver.url_for("/events"),
        "request_mode": "one",
        "body_format": "csv",
        **FAST_RETRY,
    }
    result = run_target(config, events_input(5_000, pad=""), tmp_path)

    assert result.returncode == 0, result.stderr
    first, second = recorder.requests
    assert first.body == second.body
    lines = second.body.decode().split("\r\n")
    assert lines[0] == "id,tenant,name,amount"
    assert len([line for line in lines if line]) == 5_001


# Peak RSS is measured by a small go-between process: a child forked straight from
# pytest would report pytest's own resident memory too (ru_maxrss survives the exec).
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def test_one_mode_peak_memory_stays_bounded_for_a_large_stream(recorder, httpserver, tmp_path):
    """150,000 records of ~300 bytes (45 MB): the target's peak RSS stays under 150 MB.

    A memory bound, not a speed assertion: it fails if records are kept as Python
    objects (or the body is built in memory several times over).
    """
    records = 150_000
    input_path = tmp_path / "throughput_one.singer"
    input_path.write_bytes(events_input(records, pad="y" * 250, state_every=50_000))
    assert input_path.stat().st_size > 40_000_000
    config = {"url": httpserver.url_for("/events"), "request_mode": "one"}
    cfg_path = write_config(config, tmp_path)
    usage_path = tmp_path / "usage"
    with input_path.open("rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, str(usage_path), *TARGET, "--config", str(cfg_path)],
            stdin=stdin,
            capture_output=True,
            env=clean_env(),
            timeout=RUN_TIMEOUT,
            check=False,
        )
    max_rss_kib, returncode = map(int, usage_path.read_text().split())

    assert returncode == 0, proc.stderr.decode()
    [seen] = recorder.requests
    assert len(seen.body) > 40_000_000
    ids = [r["id"] for r in json.loads(seen.body)]
    assert ids == list(range(1, records + 1))
    peak_mb = max_rss_kib / 1024  # ru_maxrss is in KiB on Linux
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB for a {len(seen.body) >> 20} MB body"
    states = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert states[-1] == {"events": records}
