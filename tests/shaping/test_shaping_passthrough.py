"""Values reach every body format as received: date-time text, every digit of a number.

Plain JSON bodies (no template) come first, then CSV, form and JSON-template bodies.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from support.run import data_file, run_target
from support.shaping import FORM_FORMATS, MODES, csv_rows, form_pairs, mode_settings

# Plain JSON bodies: the record as the tap wrote it

PLAIN_PRECISE = data_file("precise_values.singer")  # JSON bodies as the SDK would not send
BIG = b"1234567890.123456789012"
HUGE = b"1E+400"


def run_plain(httpserver, tmp_path, **settings):
    config = {"url": httpserver.url_for("/readings"), **settings}
    result = run_target(config, PLAIN_PRECISE, tmp_path)
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
    run_plain(httpserver, tmp_path, **settings)
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
    run_plain(httpserver, tmp_path)
    first = recorder.requests[0].body
    assert first == (
        b'{"id": 1, "taken_at": "2024-01-02T03:04:05Z", "value": 1234567890.123456789012}'
    )


def test_numbers_beyond_float_range_pass_through(recorder, httpserver, tmp_path):
    run_plain(httpserver, tmp_path, request_mode="batch", batch_size=10)
    (seen,) = recorder.requests
    assert HUGE in seen.body


def test_values_pass_through_when_records_take_the_sdk_path(recorder, httpserver, tmp_path):
    # add_record_metadata sends records through the SDK's own record handling.
    run_plain(httpserver, tmp_path, request_mode="batch", batch_size=10, add_record_metadata=True)
    (seen,) = recorder.requests
    assert BIG in seen.body
    assert b'"2024-01-02T03:04:05Z"' in seen.body
    assert b'"2024-01-02T03:04:05.123456+02:00"' in seen.body
    records = seen.json()
    assert [r["id"] for r in records] == [1, 2, 3]
    assert all("_sdc_received_at" in r for r in records)


# Shaped bodies (CSV, forms, JSON templates)

PRECISE = "shaping_precise.singer"
PRECISE_TEXTS = {
    "value": ["1234567890.123456789012", "0.1000"],
    "count": ["12345678901234567890123", "-9223372036854775809"],
    "taken_at": ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456+02:00"],
}
SPELLINGS = "shaping_number_spellings.singer"
SPELLING_TEXTS = ["1.0e-5", "1e2", "2.50E+3"]


def config(httpserver, body_format: str, mode: str, **settings) -> dict:
    return {
        "url": httpserver.url_for("/r"),
        "body_format": body_format,
        **mode_settings(mode),
        **settings,
    }


def csv_columns(recorder) -> dict[str, list[str]]:
    """Each column's cells over every request (every body starts with its header row)."""
    columns: dict[str, list[str]] = {}
    for seen in recorder.requests:
        header, *rows = csv_rows(seen)
        for row in rows:
            for name, cell in zip(header, row, strict=True):
                columns.setdefault(name, []).append(cell)
    return columns


def form_columns(recorder) -> dict[str, list[str]]:
    """Each field's values over every request, `records[i][name]` read as `name`."""
    columns: dict[str, list[str]] = {}
    for seen in recorder.requests:
        for key, value in form_pairs(seen):
            columns.setdefault(key.rpartition("[")[2].rstrip("]"), []).append(value)
    return columns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", ["csv", *FORM_FORMATS])
def test_precise_values_are_sent_as_received(recorder, httpserver, tmp_path, body_format, mode):
    result = run_target(config(httpserver, body_format, mode), data_file(PRECISE), tmp_path)
    assert result.returncode == 0, result.stderr
    columns = csv_columns(recorder) if body_format == "csv" else form_columns(recorder)
    for name, texts in PRECISE_TEXTS.items():
        assert columns[name] == texts


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", ["csv", *FORM_FORMATS])
def test_precise_values_fill_text_templates_as_received(
    recorder, httpserver, tmp_path, body_format, mode
):
    template = (
        "#{value},#{count},#{taken_at}"
        if body_format == "csv"
        else "value=#{value}&count=#{count}&taken_at=#{taken_at}"
    )
    settings = {"custom_payload": template}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PRECISE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    if body_format == "csv":
        rows = [row for seen in recorder.requests for row in csv_rows(seen)]
        columns = dict(zip(PRECISE_TEXTS, zip(*rows, strict=True), strict=True))
        columns = {name: list(cells) for name, cells in columns.items()}
    else:
        columns = form_columns(recorder)
    for name, texts in PRECISE_TEXTS.items():
        assert columns[name] == texts


@pytest.mark.parametrize("mode", MODES)
def test_precise_values_inside_json_template_strings(recorder, httpserver, tmp_path, mode):
    template = json.dumps({"text": "#{value} #{count} #{taken_at}"})
    settings = {"custom_payload": template}
    result = run_target(config(httpserver, "json", mode, **settings), data_file(PRECISE), tmp_path)
    assert result.returncode == 0, result.stderr
    body = b"".join(seen.body for seen in recorder.requests)
    assert b"1234567890.123456789012 12345678901234567890123 2024-01-02T03:04:05Z" in body
    assert b"0.1000 -9223372036854775809 2024-01-02T03:04:05.123456+02:00" in body


# Numbers in exponent form keep their spelling too: the text is the tap's, not a re-spelling.


@pytest.mark.parametrize("body_format", ["csv", *FORM_FORMATS])
def test_exponent_numbers_keep_their_spelling_in_text_bodies(
    recorder, httpserver, tmp_path, body_format
):
    result = run_target(config(httpserver, body_format, "one"), data_file(SPELLINGS), tmp_path)
    assert result.returncode == 0, result.stderr
    columns = csv_columns(recorder) if body_format == "csv" else form_columns(recorder)
    assert columns["value"] == SPELLING_TEXTS
    assert columns["taken_at"][1] == "2024-01-02T03:04:05.000+00:00"


RESHAPINGS = {
    "static": {"static_fields": {"source": "crm"}},
    "mapped": {"field_mappings": [{"field_name": "v", "column_name": "value"}]},
    "custom": {"custom_payload": '{"v": "#{value}"}'},
}


@pytest.mark.parametrize("shaping", list(RESHAPINGS))
def test_exponent_numbers_keep_their_spelling_in_reshaped_json(
    recorder, httpserver, tmp_path, shaping
):
    settings = RESHAPINGS[shaping]
    result = run_target(
        config(httpserver, "json", "one", **settings), data_file(SPELLINGS), tmp_path
    )
    assert result.returncode == 0, result.stderr
    body = recorder.requests[0].body
    for text in SPELLING_TEXTS:
        assert text.encode() in body, (text, body)


def test_exponent_numbers_pass_through_unshaped_json(recorder, httpserver, tmp_path):
    result = run_target(config(httpserver, "json", "one"), data_file(SPELLINGS), tmp_path)
    assert result.returncode == 0, result.stderr
    body = recorder.requests[0].body
    for text in SPELLING_TEXTS:
        assert text.encode() in body, (text, body)
