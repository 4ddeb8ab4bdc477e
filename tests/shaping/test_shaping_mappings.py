"""field_mappings: chosen columns under new names, checked against the SCHEMA."""

from __future__ import annotations

import json

import pytest
from support.run import data_file, run_target
from support.shaping import (
    FORM_FORMATS,
    MODES,
    check_request_count,
    form_pairs,
    json_records,
    mode_settings,
    records_of,
    stderr_line_with,
)

from target_restapi.shaping.mappings import FieldMapping, mapping_problems

PEOPLE = "shaping_people.singer"
RECORDS = records_of(PEOPLE, "people")

MAPPINGS = [
    {"field_name": "person_id", "column_name": "id", "field_type": "integer"},
    {"field_name": "full_name", "column_name": "name", "field_type": "string"},
    {"field_name": "city", "column_name": "address.city", "field_type": "string"},
    {"field_name": "when", "column_name": "updated_at", "field_type": "date-time"},
    {"field_name": "born", "column_name": "birthday", "field_type": "date"},
    {"field_name": "points", "column_name": "score", "field_type": "number"},
    {"field_name": "labels", "column_name": "tags", "field_type": "array"},
    {"field_name": "where", "column_name": "address", "field_type": "object"},
    {"field_name": "on", "column_name": "active", "field_type": "boolean"},
    {"field_name": "zip", "column_name": "address.zip"},
]


def mapped(record: dict) -> dict:
    address = record["address"]
    return {
        "person_id": record["id"],
        "full_name": record["name"],
        "city": address["city"] if address else None,
        "when": record["updated_at"],
        "born": record["birthday"],
        "points": record["score"],
        "labels": record["tags"],
        "where": address,
        "on": record["active"],
        "zip": address["zip"] if address else None,
    }


def config(httpserver, mode: str, **settings) -> dict:
    return {"url": httpserver.url_for("/people"), **mode_settings(mode), **settings}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nested", [False, True])
def test_only_mapped_columns_are_sent_under_their_field_names(
    recorder, httpserver, tmp_path, mode, nested
):
    settings = {"field_mappings": MAPPINGS, "send_as_nested_attribute": nested}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    check_request_count(len(recorder.requests), mode=mode, records=len(RECORDS))
    sent = json_records(recorder.bodies, mode=mode, nested="records" if nested else None)
    assert sent == [mapped(r) for r in RECORDS]
    assert [list(s) for s in sent] == [[m["field_name"] for m in MAPPINGS]] * len(RECORDS)


@pytest.mark.parametrize("mode", MODES)
def test_mapped_columns_with_static_fields(recorder, httpserver, tmp_path, mode):
    settings = {
        "field_mappings": MAPPINGS[:2],
        "static_fields": {"source": "crm", "full_name": "static"},
    }
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert json_records(recorder.bodies, mode=mode) == [
        {"source": "crm", "person_id": r["id"], "full_name": r["name"]} for r in RECORDS
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_mapped_column_missing_from_a_record_is_null(recorder, httpserver, tmp_path, mode):
    mappings = [
        {"field_name": "town", "column_name": "city", "field_type": "string"},
        {"field_name": "key", "column_name": "id"},
    ]
    settings = {"field_mappings": mappings}
    name = "shaping_reordered.singer"
    result = run_target(config(httpserver, mode, **settings), data_file(name), tmp_path)
    assert result.returncode == 0, result.stderr
    assert json_records(recorder.bodies, mode=mode) == [
        {"town": "London", "key": 1},
        {"town": "Paris", "key": 2},
        {"town": None, "key": 3},
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_mapped_form_fields(recorder, httpserver, tmp_path, body_format, mode):
    mappings = [
        {"field_name": "who", "column_name": "name"},
        {"field_name": "city", "column_name": "address.city"},
    ]
    settings = {"field_mappings": mappings, "body_format": body_format}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    sent = {}
    for seen in recorder.requests:
        sent |= {f"{len(sent)}:{key}": value for key, value in form_pairs(seen)}
    texts = list(sent.values())
    expected = []
    for r in RECORDS:
        expected += [r["name"], r["address"]["city"] if r["address"] else ""]
    assert texts == expected
    keys = [key.partition(":")[2] for key in sent]
    if mode == "single":
        assert keys == ["who", "city"] * len(RECORDS)
    else:
        assert all(key.endswith(("][who]", "][city]")) for key in keys)


# checked against the SCHEMA before any request

BAD = [
    {"field_name": "a", "column_name": "nope", "field_type": "string"},
    {"field_name": "b", "column_name": "address.country"},
    {"field_name": "c", "column_name": "name", "field_type": "integer"},
    {"field_name": "d", "column_name": "birthday", "field_type": "date-time"},
    {"field_name": "e", "column_name": "active", "field_type": "number"},
    {"field_name": "f", "column_name": "score", "field_type": "integer"},
    {"field_name": "g", "column_name": "updated_at", "field_type": "date-time"},  # good
    {"field_name": "h", "column_name": "tags", "field_type": "object"},
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_stream", [False, True])
def test_every_bad_mapping_is_listed_before_any_request(
    recorder, httpserver, tmp_path, mode, per_stream
):
    settings = (
        {"streams": {"people": {"field_mappings": BAD}}} if per_stream else {"field_mappings": BAD}
    )
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    assert result.states == []
    line = stderr_line_with(result.stderr, "'nope'")
    assert "people" in line
    assert "field_mappings" in line
    for column in ("nope", "address.country", "name", "birthday", "active", "score", "tags"):
        assert f"'{column}'" in line, column
    assert "'updated_at'" not in line


@pytest.mark.parametrize(
    ("node", "field_type", "ok"),
    [
        ({"type": "string"}, "string", True),
        ({"type": ["null", "string"]}, "string", True),
        ({"type": "string", "format": "date-time"}, "string", True),
        ({"type": "integer"}, "string", False),
        ({"type": "integer"}, "integer", True),
        ({"type": ["integer", "null"]}, "integer", True),
        ({"type": "number"}, "integer", False),
        ({"type": "number"}, "number", True),
        ({"type": "integer"}, "number", True),
        ({"type": "string"}, "number", False),
        ({"type": "boolean"}, "boolean", True),
        ({"type": "string"}, "boolean", False),
        ({"type": "object", "properties": {}}, "object", True),
        ({"type": "array"}, "object", False),
        ({"type": "array", "items": {}}, "array", True),
        ({"type": "object"}, "array", False),
        ({"type": "string", "format": "date-time"}, "date-time", True),
        ({"type": ["string", "null"], "format": "date-time"}, "date-time", True),
        ({"type": "string"}, "date-time", False),
        ({"type": "string", "format": "date"}, "date-time", False),
        ({"type": "string", "format": "date"}, "date", True),
        ({"type": "string", "format": "date-time"}, "date", False),
        ({"type": "integer"}, "date", False),
    ],
)
def test_field_type_is_checked_against_the_schema_type(node, field_type, ok):
    schema = {"type": "object", "properties": {"col": node}}
    problems = mapping_problems([FieldMapping("out", "col", field_type)], schema)
    assert (problems == []) is ok, problems
    if not ok:
        assert "'col'" in problems[0] and field_type in problems[0]


def test_nested_columns_are_checked_too():
    schema = {"properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}}}
    assert mapping_problems([FieldMapping("x", "a.b", "integer")], schema) == []
    assert len(mapping_problems([FieldMapping("x", "a.b", "string")], schema)) == 1
    assert len(mapping_problems([FieldMapping("x", "a.c")], schema)) == 1


@pytest.mark.parametrize("field_type", ["string", "date-time"])
def test_a_good_mapping_runs(recorder, httpserver, tmp_path, field_type):
    mappings = [{"field_name": "t", "column_name": "updated_at", "field_type": field_type}]
    result = run_target(
        config(httpserver, "one", field_mappings=mappings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert recorder.bodies == [[{"t": r["updated_at"]} for r in RECORDS]]


@pytest.mark.parametrize("field_type", ["text", "int", "datetime"])
def test_an_unknown_field_type_is_refused_at_start(recorder, httpserver, tmp_path, field_type):
    mappings = [{"field_name": "t", "column_name": "id", "field_type": field_type}]
    result = run_target(
        config(httpserver, "single", field_mappings=mappings), b"garbage\n", tmp_path
    )
    assert result.returncode != 0
    assert recorder.requests == []
    line = stderr_line_with(result.stderr, field_type)
    assert "field_type" in line


# custom_payload and field_mappings together

TOGETHER = [
    {"custom_payload": '{"id": "#{id}"}', "field_mappings": MAPPINGS[:1]},
    {
        "custom_payload": '{"id": "#{id}"}',
        "streams": {"people": {"field_mappings": MAPPINGS[:1]}},
    },
    {
        "field_mappings": MAPPINGS[:1],
        "streams": {"people": {"custom_payload": "id=#{id}", "body_format": "urlencoded"}},
    },
]


@pytest.mark.parametrize("settings", TOGETHER, ids=["top", "mappings-per-stream", "payload"])
def test_custom_payload_with_field_mappings_is_refused_at_start(
    recorder, httpserver, tmp_path, settings
):
    result = run_target(config(httpserver, "single", **settings), b"garbage\n", tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    line = stderr_line_with(result.stderr, "custom_payload")
    assert "field_mappings" in line
    assert "input line" not in result.stderr


def test_mappings_of_one_stream_leave_the_others_alone(recorder, httpserver, tmp_path):
    settings = {
        "streams": {
            "orders": {
                "field_mappings": [
                    {"field_name": "email", "column_name": "customer.email"},
                    {"field_name": "id", "column_name": "order_id", "field_type": "integer"},
                ]
            }
        }
    }
    result = run_target(
        config(httpserver, "single", **settings), data_file("shaping_two_streams.singer"), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = [json.loads(seen.body) for seen in recorder.requests]
    assert bodies == [
        {"id": 1, "name": 'Ada, "A"'},
        {"email": "ada@example.com", "id": 10},
        {"id": 2, "name": "Grace"},
        {"email": "grace@example.com", "id": 11},
    ]
