"""JSON bodies: custom payload templates, the nested attribute, static fields."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from support.run import data_file, run_target
from support.shaping import (
    MODES,
    assert_refused_at_start,
    check_request_count,
    json_records,
    mode_settings,
    records_of,
)

PEOPLE = "shaping_people.singer"


def config(httpserver, mode: str, **settings) -> dict:
    return {"url": httpserver.url_for("/people"), **mode_settings(mode), **settings}


def sent_records(recorder, mode: str, nested: str | None = None) -> list:
    check_request_count(len(recorder.requests), mode=mode, records=4)
    return json_records(recorder.bodies, mode=mode, nested=nested)


# custom_payload is checked at start-up

BAD_TEMPLATES = [
    '{"id": #{id}}',  # the placeholder must be inside a JSON string
    '{"id": "#{id}",}',
    '{\n  "id": "#{id}",\n  "name": "#{name}"\n  "x": 1\n}',
    '["#{id}"',
]


@pytest.mark.parametrize("template", BAD_TEMPLATES)
@pytest.mark.parametrize("input_name", [PEOPLE, None])
def test_invalid_json_template_is_refused_before_reading_input(
    recorder, httpserver, tmp_path, template, input_name
):
    # Unreadable input would fail with an input error if it were read first.
    source = data_file(input_name) if input_name else b"this is not a Singer message\n"
    result = run_target(config(httpserver, "single", custom_payload=template), source, tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    with pytest.raises(json.JSONDecodeError) as fault:
        json.loads(template)
    line = next(line for line in result.stderr.splitlines() if "custom_payload" in line)
    assert f"line {fault.value.lineno}" in line
    assert f"column {fault.value.colno}" in line
    assert "input line" not in result.stderr
    assert result.states == []


def test_invalid_json_template_of_one_stream_is_refused_at_start(recorder, httpserver, tmp_path):
    settings = {"streams": {"people": {"custom_payload": '{"id": "#{id}"'}}}
    result = run_target(config(httpserver, "single", **settings), b"garbage\n", tmp_path)
    assert result.returncode != 0
    assert recorder.requests == []
    line = next(line for line in result.stderr.splitlines() if "custom_payload" in line)
    assert "people" in line
    assert "line 1" in line
    assert "column" in line


# placeholders

TYPED = {
    "id": "#{id}",
    "score": "#{score}",
    "active": "#{active}",
    "address": "#{address}",
    "tags": "#{tags}",
    "note": "#{note}",
    "birthday": "#{ birthday }",
    "city": "#{address.city}",
    "fixed": 42,
    "pair": ["#{id}", "literal", {"deep": "#{active}"}],
}


def typed_expected(record: dict) -> dict:
    address = record["address"]
    return {
        "id": record["id"],
        "score": record["score"],
        "active": record["active"],
        "address": address,
        "tags": record["tags"],
        "note": record["note"],
        "birthday": record["birthday"],
        "city": address["city"] if address else None,
        "fixed": 42,
        "pair": [record["id"], "literal", {"deep": record["active"]}],
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nested", [None, "records", "items"])
def test_whole_placeholder_takes_the_typed_value(recorder, httpserver, tmp_path, mode, nested):
    settings = {"custom_payload": json.dumps(TYPED)}
    if nested:
        settings |= {"send_as_nested_attribute": True, "nested_attribute_name": nested}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    sent = sent_records(recorder, mode, nested)
    assert sent == [typed_expected(r) for r in records_of(PEOPLE, "people")]
    first = sent[0]
    assert isinstance(first["id"], int)
    assert isinstance(first["score"], Decimal)
    assert first["active"] is True
    assert sent[1]["note"] is None
    body = b"".join(seen.body for seen in recorder.requests)
    assert b"1234567890.123456789012" in body
    assert b"0.1000" in body


def test_whole_placeholder_of_a_field_missing_from_the_record_is_null(
    recorder, httpserver, tmp_path
):
    template = json.dumps({"id": "#{id}", "city": "#{city}"})
    settings = {"custom_payload": template, "url": httpserver.url_for("/p")}
    result = run_target(settings, data_file("shaping_reordered.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.bodies == [
        {"id": 1, "city": "London"},
        {"id": 2, "city": "Paris"},
        {"id": 3, "city": None},
    ]


TEXT = {
    "line": "#{name} wrote: #{note}",
    "label": "id-#{id}/#{active}",
    "score": "score=#{score}",
    "when": "at #{updated_at}",
    "city": 'in "#{address.city}"',
}


def text_expected(record: dict) -> dict:
    note = record["note"] or ""
    active = "true" if record["active"] else "false"
    city = record["address"]["city"] if record["address"] else ""
    return {
        "line": f"{record['name']} wrote: {note}",
        "label": f"id-{record['id']}/{active}",
        "score": f"score={record['score']}",
        "when": f"at {record['updated_at']}",
        "city": f'in "{city}"',
    }


@pytest.mark.parametrize("mode", MODES)
def test_placeholders_inside_strings_are_escaped_json_text(recorder, httpserver, tmp_path, mode):
    # Values hold quotes, newlines, CR LF, tabs, unicode and a literal `#{id}`.
    settings = {"custom_payload": json.dumps(TEXT)}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    sent = sent_records(recorder, mode)
    assert sent == [text_expected(r) for r in records_of(PEOPLE, "people")]
    assert sent[2]["line"].endswith("100%+ #{id}")


def test_interpolated_object_is_its_json_text(recorder, httpserver, tmp_path):
    template = json.dumps({"where": "address: #{address}", "tags": "tags: #{tags}"})
    settings = {"custom_payload": template, "url": httpserver.url_for("/p")}
    result = run_target(settings, data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for body, record in zip(recorder.bodies, records_of(PEOPLE, "people"), strict=True):
        if record["address"] is None:
            assert body["where"] == "address: "  # null is empty text
        else:
            assert json.loads(body["where"].removeprefix("address: ")) == record["address"]
        assert json.loads(body["tags"].removeprefix("tags: ")) == record["tags"]


# send_as_nested_attribute


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [None, "items"])
def test_nested_attribute_wraps_records(recorder, httpserver, tmp_path, mode, name):
    settings = {"send_as_nested_attribute": True}
    if name:
        settings["nested_attribute_name"] = name
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    wrapper = name or "records"
    for body in recorder.bodies:
        assert list(body) == [wrapper]
    assert sent_records(recorder, mode, wrapper) == records_of(PEOPLE, "people")


@pytest.mark.parametrize("mode", MODES)
def test_records_are_not_wrapped_by_default(recorder, httpserver, tmp_path, mode):
    settings = {"nested_attribute_name": "items"}  # only a name: no wrapping
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_records(recorder, mode) == records_of(PEOPLE, "people")


# static_fields

STATIC = {"source": "crm", "name": "static name", "meta": {"v": 1, "tags": ["a", None]}}


@pytest.mark.parametrize("mode", MODES)
def test_static_fields_merge_into_each_record(recorder, httpserver, tmp_path, mode):
    settings = {"static_fields": STATIC}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    expected = [{**STATIC, **r} for r in records_of(PEOPLE, "people")]
    sent = sent_records(recorder, mode)
    assert sent == expected
    assert sent[0]["name"] == 'Ada "the Countess" Lovelace'  # the record's field wins


@pytest.mark.parametrize("mode", MODES)
def test_static_fields_sit_beside_the_nested_attribute(recorder, httpserver, tmp_path, mode):
    settings = {"static_fields": STATIC, "send_as_nested_attribute": True}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for body in recorder.bodies:
        assert {k: v for k, v in body.items() if k != "records"} == STATIC
    assert sent_records(recorder, mode, "records") == records_of(PEOPLE, "people")


@pytest.mark.parametrize("mode", MODES)
def test_static_fields_merge_into_a_custom_payload(recorder, httpserver, tmp_path, mode):
    template = json.dumps({"id": "#{id}", "source": "template"})
    settings = {"static_fields": {"source": "crm", "team": 7}, "custom_payload": template}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_records(recorder, mode) == [
        {"id": r["id"], "source": "template", "team": 7} for r in records_of(PEOPLE, "people")
    ]


# values pass through as received

PRECISE = "shaping_precise.singer"
PRECISE_TEXTS = [
    b"1234567890.123456789012",
    b"0.1000",
    b"12345678901234567890123",
    b"-9223372036854775809",
    b'"2024-01-02T03:04:05Z"',
    b'"2024-01-02T03:04:05.123456+02:00"',
]
SHAPINGS = {
    "as-is": {},
    "nested": {"send_as_nested_attribute": True},
    "static": {"static_fields": {"source": "crm"}},
    "nested+static": {"send_as_nested_attribute": True, "static_fields": {"source": "crm"}},
    "custom": {
        "custom_payload": json.dumps(
            {"v": "#{value}", "c": "#{count}", "t": "#{taken_at}", "i": "#{id}"}
        )
    },
    "mapped": {
        "field_mappings": [
            {"field_name": "v", "column_name": "value", "field_type": "number"},
            {"field_name": "c", "column_name": "count", "field_type": "integer"},
            {"field_name": "t", "column_name": "taken_at", "field_type": "date-time"},
        ]
    },
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shaping", list(SHAPINGS))
def test_values_reach_the_body_exactly_as_received(recorder, httpserver, tmp_path, mode, shaping):
    settings = {"url": httpserver.url_for("/r"), **mode_settings(mode), **SHAPINGS[shaping]}
    result = run_target(settings, data_file(PRECISE), tmp_path)
    assert result.returncode == 0, result.stderr
    body = b"".join(seen.body for seen in recorder.requests)
    for text in PRECISE_TEXTS:
        assert text in body, (text, body)
    for seen in recorder.requests:
        json.loads(seen.body)  # every body is valid JSON


# Content-Type


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shaping", ["as-is", "nested+static", "custom"])
def test_content_type_is_application_json(recorder, httpserver, tmp_path, mode, shaping):
    settings = {"url": httpserver.url_for("/r"), **mode_settings(mode), **SHAPINGS[shaping]}
    result = run_target(settings, data_file(PRECISE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests
    for seen in recorder.requests:
        assert seen.header("Content-Type") == "application/json"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["Content-Type", "content-type", "CONTENT-TYPE"])
def test_content_type_header_setting_wins(recorder, httpserver, tmp_path, mode, name):
    settings = {"headers": {name: "application/vnd.api+json; charset=utf-8"}}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        assert seen.header("Content-Type") == "application/vnd.api+json; charset=utf-8"


# placeholders in object keys, and static fields that have no object to join


@pytest.mark.parametrize("mode", MODES)
def test_placeholders_in_keys_are_filled_as_text(recorder, httpserver, tmp_path, mode):
    template = json.dumps({"person_#{id}": {"#{name}": "#{score}"}})
    result = run_target(
        config(httpserver, mode, custom_payload=template), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert sent_records(recorder, mode) == [
        {f"person_{r['id']}": {r["name"]: r["score"]}} for r in records_of(PEOPLE, "people")
    ]


def test_a_key_placeholder_the_schema_lacks_is_refused_at_start(recorder, httpserver, tmp_path):
    template = json.dumps({"#{nope}": "#{id}"})
    result = run_target(
        config(httpserver, "single", custom_payload=template), data_file(PEOPLE), tmp_path
    )
    assert_refused_at_start(result, recorder, "#{nope}", "custom_payload")


def test_static_fields_with_a_template_that_is_not_an_object_are_refused(
    recorder, httpserver, tmp_path
):
    settings = {"custom_payload": '["#{id}"]', "static_fields": {"source": "crm"}}
    result = run_target(config(httpserver, "batch", **settings), data_file(PEOPLE), tmp_path)
    assert_refused_at_start(result, recorder, "not a JSON object", "static_fields")


def test_static_fields_beside_the_nested_attribute_suit_any_template(
    recorder, httpserver, tmp_path
):
    settings = {
        "custom_payload": '["#{id}"]',
        "static_fields": {"source": "crm"},
        "send_as_nested_attribute": True,
    }
    result = run_target(config(httpserver, "one", **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert seen.json() == {
        "records": [[r["id"]] for r in records_of(PEOPLE, "people")],
        "source": "crm",
    }
