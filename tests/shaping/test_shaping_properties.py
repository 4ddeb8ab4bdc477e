"""Property-based tests of the pure shaping functions: every body parses back to the record."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st
from support.shaping import form_leaves, same_text, text_of
from werkzeug import Request

from target_restapi.shaping.bodies import Body, csv_escape, encode_json
from target_restapi.shaping.payload_templates import FormPayload, JsonPayload, TextPayload
from target_restapi.shaping.shapers import Shape, make_shaper
from target_restapi.templates import WHOLE_RECORD

# 60 cases a test: each builds and parses back whole bodies, ~20-60 ms a case on a loaded
# machine; HYPOTHESIS_RANDOM=1 explores further (conftest.py).
EXAMPLES = settings(max_examples=60)  # on top of the suite profile (conftest.py)

# Text as a tap may send it: quotes, commas, CR/LF, unicode; no lone surrogates (not UTF-8).
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\",;\r\n\t'&=+%#{}[] \\")),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=20,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=False, allow_infinity=False),
    TEXT,
)
KEYS = TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(KEYS, inner, min_size=1, max_size=3),
    ),
    max_leaves=8,
)
RECORDS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=6)
# A top-level form field name holding `[` or `]` reads as bracket syntax (`user[name]`),
# ambiguous in any bracket-keyed form: form records use names without brackets.
FORM_KEYS = KEYS.filter(lambda k: "[" not in k and "]" not in k)
FORM_RECORDS = st.dictionaries(FORM_KEYS, VALUES, min_size=1, max_size=6)
# A field name usable in `#{...}`: no braces, no outer spaces, no dots (paths), not `*`.
NAMES = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), exclude_characters="{}."
    ),
    min_size=1,
    max_size=10,
).filter(lambda name: name != WHOLE_RECORD)


def _plain_keys(value) -> bool:
    """Whether every key inside a value is a usable multipart name part."""
    if isinstance(value, dict):
        return all(not any(c in k for c in '"\\%\r\n') and _plain_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_keys(v) for v in value)
    return True


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def body_bytes(body) -> bytes:
    """The finished body's bytes; a spooled body's file is closed, as the target does."""
    data = body.finish()
    sent = data if isinstance(data, bytes) else data.read()
    if isinstance(body, Body):  # only a Body spools
        body.close()
    return sent


# CSV


@EXAMPLES
@given(RECORDS)
def test_a_csv_line_parses_back_to_the_field_texts(record):
    columns = list(record)
    shaper = make_shaper(Shape(body_format="csv"), columns, single=True)
    rows = parse_csv(shaper.item(record, None, 0))
    assert len(rows) == 1
    assert len(rows[0]) == len(columns)
    for cell, column in zip(rows[0], columns, strict=True):
        assert same_text(cell, record[column]), (column, cell)


@EXAMPLES
@given(st.lists(RECORDS, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_a_csv_body_is_a_header_then_one_row_per_record(records, named, spool):
    columns = list(dict.fromkeys(key for record in records for key in record))
    shaper = make_shaper(Shape(body_format="csv", set_field_name=named), columns, single=False)
    body = shaper.new_body(spool=spool)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    rows = parse_csv(body_bytes(body))
    if named:
        assert rows[0] == columns
        rows = rows[1:]
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        for cell, column in zip(row, columns, strict=True):
            assert same_text(cell, record.get(column)), (column, cell)


@EXAMPLES
@given(VALUES, VALUES, VALUES)
def test_a_csv_template_escapes_each_value(a, b, c):
    template = TextPayload("#{a},fixed,#{b},#{c}", csv_escape)
    rows = parse_csv(template.render({"a": a, "b": b, "c": c}).encode() + b"\r\n")
    assert len(rows) == 1
    assert len(rows[0]) == 4
    assert same_text(rows[0][0], a)
    assert rows[0][1] == "fixed"
    assert same_text(rows[0][2], b)
    assert same_text(rows[0][3], c)


@EXAMPLES
@given(st.lists(st.fixed_dictionaries({"a": VALUES, "b": VALUES}), min_size=1, max_size=4))
def test_a_csv_template_makes_one_row_per_record(records):
    shaper = make_shaper(Shape(body_format="csv", custom_payload="#{a},#{b}"), [], single=False)
    body = shaper.new_body(spool=False)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    rows = parse_csv(body_bytes(body))
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert same_text(row[0], record["a"]) and same_text(row[1], record["b"])


# urlencoded and multipart


@EXAMPLES
@given(FORM_RECORDS)
def test_an_urlencoded_record_parses_back_to_its_flattened_pairs(record):
    shaper = make_shaper(Shape(body_format="urlencoded"), list(record), single=True)
    encoded = shaper.item(record, None, 0)
    assert parse_qsl(encoded.decode("ascii"), keep_blank_values=True) == form_leaves(record)


@EXAMPLES
@given(st.lists(FORM_RECORDS, min_size=1, max_size=4), st.booleans())
def test_an_urlencoded_batch_keys_records_by_index(records, spool):
    shaper = make_shaper(Shape(body_format="urlencoded"), [], single=False)
    body = shaper.new_body(spool=spool)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    expected = [
        pair for i, record in enumerate(records) for pair in form_leaves(record, f"records[{i}]")
    ]
    pairs = parse_qsl(body_bytes(body).decode("ascii"), keep_blank_values=True)
    assert pairs == expected


# Multipart field names are escaped as browsers do (`"` as %22, CR LF as %0D%0A, `\\` raw),
# which no parser reverses exactly: names here avoid those characters; values may hold any.
PART_KEYS = FORM_KEYS.filter(lambda k: not any(c in k for c in '"\\%\r\n'))
PART_RECORDS = st.dictionaries(PART_KEYS, VALUES.filter(_plain_keys), min_size=1, max_size=6)


@EXAMPLES
@given(st.lists(PART_RECORDS, min_size=1, max_size=3), st.booleans())
def test_a_multipart_body_parses_back_with_werkzeug(records, single):
    records = records[:1] if single else records
    shaper = make_shaper(Shape(body_format="form_data"), [], single=single)
    body = shaper.new_body(spool=False)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    data = body_bytes(body)
    request = Request.from_values(
        method="POST",
        input_stream=io.BytesIO(data),
        content_length=len(data),
        content_type=body.content_type,
    )
    if single:
        expected = form_leaves(records[0])
    else:
        expected = [p for i, r in enumerate(records) for p in form_leaves(r, f"records[{i}]")]
    assert list(request.form.items(multi=True)) == _multidict_order(expected)


def _multidict_order(pairs):
    """Pairs as a werkzeug MultiDict lists them: grouped by key, keys by first sight."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return [(key, value) for key, values in grouped.items() for value in values]


@EXAMPLES
@given(VALUES, VALUES)
def test_a_form_template_fills_values_as_text(a, b):
    template = FormPayload("first=#{a}&second=#{b}&fixed=x%26y")
    pairs = template.render({"a": a, "b": b})
    assert [key for key, _ in pairs] == ["first", "second", "fixed"]
    assert same_text(pairs[0][1], a)
    assert same_text(pairs[1][1], b)
    assert pairs[2][1] == "x&y"
    shaper = make_shaper(
        Shape(body_format="urlencoded", custom_payload="first=#{a}&second=#{b}"), [], single=True
    )
    parsed = parse_qsl(shaper.item({"a": a, "b": b}, None, 0).decode(), keep_blank_values=True)
    assert [key for key, _ in parsed] == ["first", "second"]
    assert same_text(parsed[0][1], a) and same_text(parsed[1][1], b)


# JSON custom payload


@EXAMPLES
@given(NAMES, VALUES)
def test_a_whole_placeholder_renders_to_the_value_itself(name, value):
    template = JsonPayload(json.dumps({"v": "#{" + name + "}"}))
    rendered = template.render({name: value})
    assert rendered == {"v": value}
    decoded = json.loads(encode_json(rendered), parse_float=Decimal)
    assert decoded == {"v": value}
    assert type(decoded["v"]) is type(value) or isinstance(value, Decimal)


@EXAMPLES
@given(NAMES, SCALARS, TEXT.filter(lambda t: "#{" not in t), TEXT.filter(lambda t: "#{" not in t))
def test_text_interpolated_in_a_json_string_round_trips(name, value, before, after):
    text = f"<{before}#{{{name}}}{after}>"
    template = JsonPayload(json.dumps({"s": text, "k": [after]}))
    body = encode_json(template.render({name: value}))
    decoded = json.loads(body)
    assert decoded == {"s": f"<{before}{text_of(value)}{after}>", "k": [after]}


@EXAMPLES
@given(NAMES, VALUES, TEXT.filter(lambda t: "#{" not in t))
def test_an_object_interpolated_in_a_json_string_is_its_json_text(name, value, before):
    template = JsonPayload(json.dumps({"s": f"<{before}#{{{name}}}"}))
    decoded = json.loads(encode_json(template.render({name: value})))
    assert decoded["s"].startswith(f"<{before}")
    assert same_text(decoded["s"][len(before) + 1 :], value)


@EXAMPLES
@given(st.lists(RECORDS, min_size=1, max_size=4), st.booleans())
def test_json_items_join_into_an_array_or_the_nested_attribute(records, nested):
    shape = Shape(nested_attribute="records" if nested else None, static_fields={"s": 1})
    shaper = make_shaper(shape, [], single=False)
    body = shaper.new_body(spool=True)
    for index, record in enumerate(records):
        body.add(shaper.item(record, encode_json(record), index))
    decoded = json.loads(body_bytes(body), parse_float=Decimal)
    if nested:
        assert decoded == {"records": records, "s": 1}
    else:
        assert decoded == [{"s": 1, **record} for record in records]
