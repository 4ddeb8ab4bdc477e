"""Form bodies (form_data multipart, urlencoded): keys, bracket nesting, static fields."""

from __future__ import annotations

import io
import re

import pytest
from support.run import data_file, run_target
from support.shaping import (
    FORM_FORMATS,
    MODES,
    check_request_count,
    columns_of,
    form_leaves,
    form_pairs,
    mode_settings,
    records_of,
    same_text,
    text_of,
)
from werkzeug import Request

PEOPLE = "shaping_people.singer"
RECORDS = records_of(PEOPLE, "people")
INDEXED = re.compile(r"^(\w+)\[(\d+)\]")


def config(httpserver, body_format: str, mode: str, **settings) -> dict:
    return {
        "url": httpserver.url_for("/people"),
        "body_format": body_format,
        **mode_settings(mode),
        **settings,
    }


def received(recorder) -> list[dict[str, str]]:
    """Every request's form fields as a dict (keys are unique in a body)."""
    return [dict(form_pairs(seen)) for seen in recorder.requests]


def record_count(fields: dict[str, str], prefix: str) -> int:
    """How many records a batched body holds: the distinct `prefix[i]` indexes."""
    matches = [m for key in fields if (m := INDEXED.match(key)) is not None]
    assert all(m.group(1) == prefix for m in matches), list(fields)
    indexes = {int(m.group(2)) for m in matches}
    assert indexes == set(range(len(indexes))), sorted(indexes)
    return len(indexes)


def expected_bodies(bodies, records, *, prefix, beside=None, shape=lambda r: r):
    """What each received body should hold, taking records in order."""
    expected, rest = [], list(records)
    for fields in bodies:
        n = 1 if prefix is None else record_count(fields, prefix)
        taken, rest = rest[:n], rest[n:]
        pairs = []
        for index, record in enumerate(taken):
            pairs += form_leaves(shape(record), None if prefix is None else f"{prefix}[{index}]")
        expected.append(dict(pairs) | (beside or {}))
    assert rest == [], "records never sent"
    return expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_every_field_is_sent_with_bracket_keys(recorder, httpserver, tmp_path, body_format, mode):
    result = run_target(config(httpserver, body_format, mode), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    check_request_count(len(recorder.requests), mode=mode, records=len(RECORDS))
    bodies = received(recorder)
    prefix = None if mode == "single" else "records"
    assert bodies == expected_bodies(bodies, RECORDS, prefix=prefix)


@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_keys_and_texts_of_one_record(recorder, httpserver, tmp_path, body_format):
    result = run_target(config(httpserver, body_format, "single"), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    ada, grace, katherine, dorothy = received(recorder)
    assert ada["name"] == 'Ada "the Countess" Lovelace'
    assert ada["note"] == "first, line\nsecond line"
    assert ada["address[city]"] == "London"
    assert ada["tags[1]"] == "poetry, science"
    assert ada["active"] == "true"
    assert ada["score"] == "1234567890.123456789012"
    assert ada["updated_at"] == "2024-01-02T03:04:05Z"
    assert grace["note"] == "" and grace["birthday"] == ""  # nulls
    assert grace["name"] == "Grâce Ωmega ✓ 漢字"
    assert grace["score"] == "0.1000"
    assert katherine["address[city]"] == "Hampton\r\nVA"
    assert katherine["tags[0]"] == "a&b=c" and katherine["tags[2]"] == "[0]"
    assert katherine["note"] == "tab\there; semi;colon 'single' a&b=c 100%+ #{id}"
    assert dorothy["address"] == ""  # a null object is one empty field
    assert "address" not in ada


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_nested_attribute_name_prefixes_the_records(
    recorder, httpserver, tmp_path, body_format, mode
):
    settings = {"send_as_nested_attribute": True, "nested_attribute_name": "items"}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = received(recorder)
    assert bodies == expected_bodies(bodies, RECORDS, prefix="items")
    if mode == "single":
        assert bodies[0]["items[0][address][city]"] == "London"


@pytest.mark.parametrize("mode", ["batch", "one"])
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_batches_use_the_nested_attribute_name(recorder, httpserver, tmp_path, body_format, mode):
    settings = {"nested_attribute_name": "people"}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = received(recorder)
    assert bodies == expected_bodies(bodies, RECORDS, prefix="people")


# static_fields

STATIC = {"source": "crm", "name": 'static, "name"', "flag": False, "none": None}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_static_fields_join_the_fields(recorder, httpserver, tmp_path, body_format, mode):
    settings = {"static_fields": STATIC}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = received(recorder)
    if mode == "single":  # merged into the record's fields; the record's field wins
        expected = expected_bodies(bodies, RECORDS, prefix=None, shape=lambda r: STATIC | r)
        assert bodies[0]["name"] == 'Ada "the Countess" Lovelace'
    else:  # once per body, beside the bracketed records
        beside = {"source": "crm", "name": 'static, "name"', "flag": "false", "none": ""}
        expected = expected_bodies(bodies, RECORDS, prefix="records", beside=beside)
    assert bodies == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_static_objects_use_bracket_keys_like_record_fields(
    recorder, httpserver, tmp_path, body_format, mode
):
    settings = {"static_fields": {"meta": {"team": "a b", "ids": [1, 2]}}}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    for fields in received(recorder):
        assert fields["meta[team]"] == "a b"
        assert fields["meta[ids][0]"] == "1"
        assert fields["meta[ids][1]"] == "2"
        assert "meta" not in fields


# set_field_name false: keys are positions

POSITIONS = "shaping_positions.singer"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_keys_are_positions_without_field_names(recorder, httpserver, tmp_path, body_format, mode):
    settings = {"set_field_name": False}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(POSITIONS), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = received(recorder)
    prefix = None if mode == "single" else "records"

    def by_position(record: dict) -> dict:
        return {str(i): value for i, value in enumerate(record.values())}

    assert bodies == expected_bodies(
        bodies, records_of(POSITIONS, "people"), prefix=prefix, shape=by_position
    )
    if mode == "single":
        assert bodies[0] == {
            "0": "1",
            "1": 'Ada, "A"',
            "2[city]": "London",
            "3[0]": "x",
            "3[1]": "y&z",
            "4": "line1\nline2",
        }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_positions_are_the_schema_columns(recorder, httpserver, tmp_path, body_format, mode):
    # Position N must always mean the same field, as a CSV column does: the SCHEMA's
    # properties order, whatever the key order of a record (record 2 is reversed).
    name = "shaping_reordered.singer"
    settings = {"set_field_name": False}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(name), tmp_path
    )
    assert result.returncode == 0, result.stderr
    columns = columns_of(name, "people")
    records = iter(records_of(name, "people"))
    for fields in received(recorder):
        groups: dict[str, dict[int, str]] = {}
        for key, text in fields.items():
            *head, position = re.findall(r"\w+", key)
            groups.setdefault("/".join(head), {})[int(position)] = text
        for group in groups.values():
            record = next(records)
            for position, text in group.items():
                assert text == text_of(record.get(columns[position])), (position, record)


@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_positions_of_static_fields_come_after_the_record_fields(
    recorder, httpserver, tmp_path, body_format
):
    # As in CSV, where static fields are extra columns after the SCHEMA's.
    settings = {"set_field_name": False, "static_fields": {"source": "crm"}}
    result = run_target(
        config(httpserver, body_format, "single", **settings), data_file(POSITIONS), tmp_path
    )
    assert result.returncode == 0, result.stderr
    first = received(recorder)[0]
    assert first["0"] == "1"
    assert first["1"] == 'Ada, "A"'
    assert first["5"] == "crm"


# custom_payload: `key=#{field}&...`

TEMPLATE = (
    "id=#{id}&who=#{name}&note=#{note}&city=#{address.city}&tags=#{tags}"
    "&lit=a%20b+c&user[active]=#{active}&score=#{score}"
)


def template_fields(record: dict) -> dict:
    """The template's fields but `tags`, whose JSON text is checked on its own."""
    address = record["address"]
    return {
        "id": record["id"],
        "who": record["name"],
        "note": record["note"],
        "city": address["city"] if address else None,
        "lit": "a b c",
        "user": {"active": record["active"]},
        "score": record["score"],
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_custom_payload_fills_form_values(recorder, httpserver, tmp_path, body_format, mode):
    settings = {"custom_payload": TEMPLATE}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    bodies = received(recorder)
    prefix = None if mode == "single" else "records"
    tags = [
        (fields.pop(key), key)
        for fields in bodies
        for key in [k for k in fields if k == "tags" or k.endswith("][tags]")]
    ]
    assert bodies == expected_bodies(bodies, RECORDS, prefix=prefix, shape=template_fields)
    assert len(tags) == len(RECORDS)
    for (text, key), record in zip(tags, RECORDS, strict=True):
        assert same_text(text, record["tags"]), (key, text)  # one field of JSON text
    assert any(v.endswith("100%+ #{id}") for fields in bodies for v in fields.values())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_static_fields_join_a_custom_payload(recorder, httpserver, tmp_path, body_format, mode):
    settings = {"custom_payload": "id=#{id}", "static_fields": {"source": "crm"}}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    for fields in received(recorder):
        assert fields["source"] == "crm", fields


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_a_repeated_template_key_sends_every_value(
    recorder, httpserver, tmp_path, body_format, mode
):
    # `tag=a&tag=b` is how forms send several values under one key; none may be lost.
    settings = {"custom_payload": "tag=#{id}&tag=#{name}&one=#{active}"}
    result = run_target(
        config(httpserver, body_format, mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    sent = []
    for seen in recorder.requests:
        request = Request.from_values(
            method="POST",
            input_stream=io.BytesIO(seen.body),
            content_length=len(seen.body),
            content_type=seen.header("Content-Type"),
        )
        form = request.form
        keys = sorted({key for key in form if key.endswith("tag") or key.endswith("[tag]")})
        sent += [form.getlist(key) for key in keys]
    assert sent == [[str(r["id"]), r["name"]] for r in RECORDS]


# Content-Type


@pytest.mark.parametrize("mode", MODES)
def test_urlencoded_content_type(recorder, httpserver, tmp_path, mode):
    result = run_target(config(httpserver, "urlencoded", mode), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        assert seen.header("Content-Type") == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("mode", MODES)
def test_multipart_content_type_carries_the_body_boundary(recorder, httpserver, tmp_path, mode):
    result = run_target(config(httpserver, "form_data", mode), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        match = re.fullmatch(r"multipart/form-data; boundary=(\S+)", seen.header("Content-Type"))
        assert match, seen.header("Content-Type")
        assert seen.body.startswith(b"--" + match.group(1).encode() + b"\r\n")
        assert seen.body.endswith(b"--" + match.group(1).encode() + b"--\r\n")


# form_data refuses a type that would hide its boundary: tests/shaping/test_shaping_edges.py
@pytest.mark.parametrize("mode", MODES)
def test_content_type_header_setting_wins(recorder, httpserver, tmp_path, mode):
    settings = {"headers": {"content-type": "application/x-custom"}}
    result = run_target(
        config(httpserver, "urlencoded", mode, **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    for seen in recorder.requests:
        assert seen.header("Content-Type") == "application/x-custom"


@pytest.mark.parametrize("body_format", FORM_FORMATS)
def test_placeholders_in_template_keys_are_filled(recorder, httpserver, tmp_path, body_format):
    settings = {"custom_payload": "tag_#{id}=yes&id=#{id}"}
    result = run_target(
        config(httpserver, body_format, "single", **settings), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert received(recorder) == [{f"tag_{r['id']}": "yes", "id": str(r["id"])} for r in RECORDS]
