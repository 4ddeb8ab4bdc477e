"""CSV bodies (body_format csv): RFC 4180 lines, header row, static columns."""

from __future__ import annotations

import pytest
from support.run import data_file, run_target
from support.shaping import (
    MODES,
    assert_refused_at_start,
    check_request_count,
    columns_of,
    csv_rows,
    mode_settings,
    records_of,
    same_text,
)

PEOPLE = "shaping_people.singer"
COLUMNS = columns_of(PEOPLE, "people")
RECORDS = records_of(PEOPLE, "people")


def config(httpserver, mode: str, **settings) -> dict:
    return {
        "url": httpserver.url_for("/people"),
        "body_format": "csv",
        **mode_settings(mode),
        **settings,
    }


def assert_row(row: list[str], record: dict, columns: list[str]) -> None:
    assert len(row) == len(columns), row
    for cell, column in zip(row, columns, strict=True):
        assert same_text(cell, record.get(column)), (column, cell, record.get(column))


def all_rows(recorder, *, header: list[str] | None) -> list[list[str]]:
    """Data rows of every request, checking each request's header row."""
    rows = []
    for seen in recorder.requests:
        parsed = csv_rows(seen)
        if header is not None:
            assert parsed[0] == header
            parsed = parsed[1:]
        assert parsed, "a request without records"
        rows += parsed
    return rows


@pytest.mark.parametrize("mode", MODES)
def test_one_line_per_record_under_a_header_row(recorder, httpserver, tmp_path, mode):
    result = run_target(config(httpserver, mode), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    check_request_count(len(recorder.requests), mode=mode, records=len(RECORDS))
    rows = all_rows(recorder, header=COLUMNS)
    assert len(rows) == len(RECORDS)
    for row, record in zip(rows, RECORDS, strict=True):
        assert_row(row, record, COLUMNS)


def test_cells_spell_values_as_the_issue_says(recorder, httpserver, tmp_path):
    result = run_target(config(httpserver, "one"), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    header, *rows = csv_rows(recorder.requests[0])
    ada, grace, katherine, dorothy = (dict(zip(header, row, strict=True)) for row in rows)
    assert ada["name"] == 'Ada "the Countess" Lovelace'
    assert ada["note"] == "first, line\nsecond line"
    assert ada["active"] == "true"
    assert grace["active"] == "false"
    assert grace["note"] == ""  # null
    assert grace["birthday"] == ""  # null
    assert ada["score"] == "1234567890.123456789012"
    assert grace["score"] == "0.1000"
    assert katherine["score"] == "-7"
    assert ada["updated_at"] == "2024-01-02T03:04:05Z"
    assert katherine["updated_at"] == "2024-01-04T00:00:00.123456Z"
    assert ada["address"].startswith("{") and same_text(ada["address"], RECORDS[0]["address"])
    assert same_text(ada["tags"], ["math", "poetry, science"])
    assert katherine["address"] == '{"city":"Hampton\\r\\nVA","zip":""}'
    assert dorothy["address"] == ""  # null object
    assert grace["name"] == "Grâce Ωmega ✓ 漢字"


def test_lines_end_with_crlf_and_fields_are_quoted_only_when_needed(recorder, httpserver, tmp_path):
    path = tmp_path / "in.singer"
    path.write_text(
        '{"type": "SCHEMA", "stream": "s", "schema": {"properties": {"a": {"type": "string"}, '
        '"b": {"type": ["string", "null"]}, "n": {"type": "integer"}}}, "key_properties": []}\n'
        '{"type": "RECORD", "stream": "s", "record": {"a": "plain", "b": "x, \\"y\\"", "n": 1}}\n'
        '{"type": "RECORD", "stream": "s", "record": {"a": "two\\nlines", "b": null, "n": 2}}\n'
    )
    result = run_target(config(httpserver, "one"), path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests[0].body == (b'a,b,n\r\nplain,"x, ""y""",1\r\n"two\nlines",,2\r\n')


@pytest.mark.parametrize("mode", MODES)
def test_no_header_row_when_set_field_name_is_false(recorder, httpserver, tmp_path, mode):
    settings = {"set_field_name": False}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    rows = all_rows(recorder, header=None)
    assert len(rows) == len(RECORDS)
    for row, record in zip(rows, RECORDS, strict=True):
        assert_row(row, record, COLUMNS)


@pytest.mark.parametrize("mode", MODES)
def test_columns_follow_the_schema_not_the_record(recorder, httpserver, tmp_path, mode):
    name = "shaping_reordered.singer"
    result = run_target(config(httpserver, mode), data_file(name), tmp_path)
    assert result.returncode == 0, result.stderr
    rows = all_rows(recorder, header=["id", "name", "city"])
    assert rows == [["1", "Ada", "London"], ["2", "Grace", "Paris"], ["3", "Katherine", ""]]


STATIC = {"source": "crm", "name": "static name", "meta": {"a": [1, "x,y"]}, "flag": True}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("set_field_name", [True, False])
def test_static_fields_are_extra_columns(recorder, httpserver, tmp_path, mode, set_field_name):
    settings = {"static_fields": STATIC, "set_field_name": set_field_name}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    columns = [*COLUMNS, "source", "meta", "flag"]
    rows = all_rows(recorder, header=columns if set_field_name else None)
    assert len(rows) == len(RECORDS)
    for row, record in zip(rows, RECORDS, strict=True):
        assert_row(row, {**STATIC, **record}, columns)
        assert row[1] == record["name"]  # the record's field wins over the static one
        assert row[-3:] == ["crm", '{"a":[1,"x,y"]}', "true"]


@pytest.mark.parametrize("mode", MODES)
def test_field_mappings_choose_and_name_the_columns(recorder, httpserver, tmp_path, mode):
    mappings = [
        {"field_name": "person", "column_name": "name", "field_type": "string"},
        {"field_name": "city", "column_name": "address.city"},
        {"field_name": "id", "column_name": "id", "field_type": "integer"},
    ]
    settings = {"field_mappings": mappings, "static_fields": {"source": "crm"}}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    rows = all_rows(recorder, header=["person", "city", "id", "source"])
    assert rows == [
        [r["name"], r["address"]["city"] if r["address"] else "", str(r["id"]), "crm"]
        for r in RECORDS
    ]


# custom_payload as a CSV line

TEMPLATE = "#{id},#{name},#{note},#{address},#{active},#{score},#{address.city},fixed"


@pytest.mark.parametrize("mode", MODES)
def test_custom_payload_is_one_escaped_csv_line_per_record(recorder, httpserver, tmp_path, mode):
    settings = {"custom_payload": TEMPLATE}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    check_request_count(len(recorder.requests), mode=mode, records=len(RECORDS))
    rows = all_rows(recorder, header=None)  # no header row: the template names no columns
    assert len(rows) == len(RECORDS)
    for row, record in zip(rows, RECORDS, strict=True):
        address = record["address"]
        expected = [
            record["id"],
            record["name"],
            record["note"],
            address,
            record["active"],
            record["score"],
            address["city"] if address else None,
            "fixed",
        ]
        assert len(row) == len(expected), row
        for cell, value in zip(row, expected, strict=True):
            assert same_text(cell, value), (cell, value)
    assert rows[2][2].endswith("#{id}")  # a value is never filled again


# Content-Type


@pytest.mark.parametrize("mode", MODES)
def test_content_type_is_text_csv(recorder, httpserver, tmp_path, mode):
    result = run_target(config(httpserver, mode), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        assert seen.header("Content-Type").split(";")[0].strip() == "text/csv"


@pytest.mark.parametrize("mode", MODES)
def test_content_type_header_setting_wins(recorder, httpserver, tmp_path, mode):
    settings = {"headers": {"Content-Type": "text/plain; charset=utf-8"}}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        assert seen.header("Content-Type") == "text/plain; charset=utf-8"
    assert csv_rows(recorder.requests[0])[0] == COLUMNS


def test_static_fields_with_a_csv_template_are_refused_at_start(recorder, httpserver, tmp_path):
    settings = {"custom_payload": "#{id};#{name}", "static_fields": {"source": "crm"}}
    result = run_target(config(httpserver, "batch", **settings), data_file(PEOPLE), tmp_path)
    assert_refused_at_start(
        result, recorder, "static_fields", "write the constants into the template"
    )
