"""Values reach the server exactly as the tap wrote them: date-times and long numbers."""

from decimal import Decimal

import pytest
from support.run import data_file, run_target

PRECISE = data_file("precise_values.singer")
BIG = b"1234567890.123456789012"
HUGE = b"1E+400"


def run(httpserver, tmp_path, **settings):
    config = {"url": httpserver.url_for("/readings"), **settings}
    result = run_target(config, PRECISE, tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def records_sent(recorder):
    records = []
    for body in recorder.bodies:
        records.extend(body if isinstance(body, list) else [body])
    return records


@pytest.mark.parametrize(
    "settings",
    [
        {"request_mode": "single"},
        {"request_mode": "batch", "batch_size": 2},
        {"request_mode": "one"},
    ],
    ids=["single", "batch", "one"],
)
def test_values_pass_through_unchanged(recorder, httpserver, tmp_path, settings):
    run(httpserver, tmp_path, **settings)
    raw = b"".join(seen.body for seen in recorder.requests)
    assert BIG in raw
    assert b'"2024-01-02T03:04:05Z"' in raw
    assert b'"2024-01-02T03:04:05.123456+02:00"' in raw
    records = records_sent(recorder)
    assert [r["id"] for r in records] == [1, 2, 3]
    assert records[0]["value"] == Decimal(BIG.decode())
    assert records[0]["taken_at"] == "2024-01-02T03:04:05Z"
    assert records[1]["value"] == Decimal("0.1")


def test_single_mode_body_is_the_record_as_received(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path)
    first = recorder.requests[0].body
    assert first == (
        b'{"id": 1, "taken_at": "2024-01-02T03:04:05Z", "value": 1234567890.123456789012}'
    )


def test_numbers_beyond_float_range_pass_through(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, request_mode="batch", batch_size=10)
    (seen,) = recorder.requests
    assert HUGE in seen.body


def test_values_pass_through_when_records_take_the_sdk_path(recorder, httpserver, tmp_path):
    # add_record_metadata sends records through the SDK's own record handling.
    run(httpserver, tmp_path, request_mode="batch", batch_size=10, add_record_metadata=True)
    (seen,) = recorder.requests
    assert BIG in seen.body
    assert b'"2024-01-02T03:04:05Z"' in seen.body
    assert b'"2024-01-02T03:04:05.123456+02:00"' in seen.body
    records = seen.json()
    assert [r["id"] for r in records] == [1, 2, 3]
    assert all("_sdc_received_at" in r for r in records)
