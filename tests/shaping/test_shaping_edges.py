"""Shaping edges: what a body template or setting cannot mean is refused at
start-up with its place and its fix; what it can mean is sent exactly as written."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.run import data_file, run_target
from support.shaping import (
    MODES,
    assert_refused_at_start,
    form_leaves,
    form_pairs,
    mode_settings,
    records_of,
    same_text,
    stderr_line_with,
)

from target_restapi.shaping.bodies import encode_json
from target_restapi.shaping.payload_templates import JsonPayload
from target_restapi.shaping.shapers import Shape, make_shaper

# 60 cases a test (each a whole body built and parsed back); HYPOTHESIS_RANDOM=1 explores
# further (conftest.py).
EXAMPLES = settings(max_examples=60)  # on top of the suite profile (conftest.py)

PEOPLE = "shaping_people.singer"
RECORDS = records_of(PEOPLE, "people")


def config(httpserver, mode: str = "single", **settings) -> dict:
    return {"url": httpserver.url_for("/people"), **mode_settings(mode), **settings}


def refused(recorder, httpserver, tmp_path, *words: str, **settings) -> str:
    """Run with `settings`; the run must stop before any request with one line naming
    every one of `words`. Returns that line."""
    result = run_target(config(httpserver, **settings), data_file(PEOPLE), tmp_path)
    assert_refused_at_start(result, recorder, *words)
    line = stderr_line_with(result.stderr, words[0])
    for word in words:
        assert word in line, line
    assert "Traceback" not in result.stderr
    return line


# 1. custom_payload (JSON): constants are sent as written

# JSON number spellings (RFC 8259 grammar), including those a float would respell.
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=25)
INT_PART = st.one_of(
    st.just("0"), st.builds(lambda a, b: a + b, st.sampled_from("123456789"), DIGITS | st.just(""))
)
NUMBERS = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "-"]),
    INT_PART,
    st.one_of(st.just(""), DIGITS.map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, d: e + s + d[:3],
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            DIGITS,
        ),
    ),
)


@EXAMPLES
@given(NUMBERS, NUMBERS, NUMBERS)
def test_template_numbers_keep_their_spelling(a, b, c):
    template = JsonPayload(f'{{"a": {a}, "list": [{b}, {{"deep": {c}}}], "v": "#{{v}}"}}')
    body = encode_json(template.render({"v": 7}))
    assert body == f'{{"a":{a},"list":[{b},{{"deep":{c}}}],"v":7}}'.encode()


SPELLINGS = [
    "1.10",
    "1e3",
    "-0",
    "1.0",
    "-0.0",
    "12345678901234567890123456789",
    "1E-7",
    "2.50e+01",
]


@pytest.mark.parametrize("mode", MODES)
def test_constants_reach_the_server_as_written(recorder, httpserver, tmp_path, mode):
    members = ", ".join(f'"c{i}": {s}' for i, s in enumerate(SPELLINGS))
    template = f'{{"id": "#{{id}}", {members}}}'
    result = run_target(
        config(httpserver, mode, custom_payload=template), data_file(PEOPLE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    constants = ",".join(f'"c{i}":{s}' for i, s in enumerate(SPELLINGS)).encode()
    bodies = b"".join(seen.body for seen in recorder.requests)
    assert bodies.count(constants) == len(RECORDS), bodies


# A key given twice, at any depth: a path of object members and array places to it.
KEYS = st.text(max_size=6)
STEPS = st.lists(st.one_of(KEYS, st.integers(min_value=0, max_value=3)), max_size=4)


def _nest(steps: list, inner: str) -> tuple[str, str]:
    """JSON text holding `inner` at `steps`, and the path the error names for it."""
    text, path = inner, ""
    for step in reversed(steps):
        if isinstance(step, int):
            text = "[" + "0, " * step + text + "]"
            path = f"[{step}]{path}"
        else:  # a neighbour key longer than any drawn key: never a duplicate
            text = f'{{"neighbour": 1, {json.dumps(step)}: {text}}}'
            quoted = json.dumps(step, ensure_ascii=False)
            path = (f".{step}" if step.isidentifier() else f"[{quoted}]") + path
    return text, "$" + path


@EXAMPLES
@given(STEPS, KEYS, st.booleans())
def test_a_key_given_twice_is_refused_with_its_path(steps, key, placeholder):
    value = '"#{id}"' if placeholder else "2"
    text, path = _nest(steps, f'{{{json.dumps(key)}: 1, "x": [], {json.dumps(key)}: {value}}}')
    with pytest.raises(ValueError) as refusal:
        JsonPayload(text)
    message = str(refusal.value)
    quoted = json.dumps(key, ensure_ascii=False)
    assert f"the key {quoted} twice in the object at {path};" in message


def test_a_key_given_twice_is_refused_at_start(recorder, httpserver, tmp_path):
    template = '{"id": "#{id}", "user": {"name": "#{name}", "name": "x"}}'
    line = refused(
        recorder,
        httpserver,
        tmp_path,
        "custom_payload",
        '"name"',
        "twice",
        "$.user",
        custom_payload=template,
    )
    assert "keep one" in line


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused_at_start(recorder, httpserver, tmp_path, constant):
    template = f'{{"id": "#{{id}}",\n "ratio": {constant}, "text": "NaN"}}'
    refused(
        recorder,
        httpserver,
        tmp_path,
        "custom_payload",
        constant,
        "line 2 column 11",
        "null",
        custom_payload=template,
    )


# A placeholder outside quotes: the message shows it quoted, and where it is.
NAMES = st.text(
    alphabet=st.characters(exclude_characters="{}", exclude_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda n: n.strip() == n and n)
STRINGS = st.text(alphabet=st.sampled_from(list('ab "\\#{}\n:,')), max_size=8)
SPACES = st.text(alphabet=" \n\t", max_size=3)


@EXAMPLES
@given(st.lists(st.tuples(STRINGS, STRINGS, SPACES), max_size=4), NAMES, SPACES)
def test_a_placeholder_outside_quotes_is_refused_with_the_fix(members, name, space):
    quoted_members = [f"{gap}{json.dumps(k)}:{json.dumps('#{x}' + v)}," for k, v, gap in members]
    head = "{" + "".join(quoted_members) + space + '"bare": '
    placeholder = "#{" + name + "}"
    text = head + placeholder + "}"
    with pytest.raises(ValueError) as refusal:
        JsonPayload(text)
    line = head.count("\n") + 1
    column = len(head) - (head.rfind("\n") + 1) + 1
    message = str(refusal.value)
    assert f'write it as "{placeholder}"' in message
    assert f"at line {line} column {column};" in message


def test_a_placeholder_outside_quotes_is_refused_at_start(recorder, httpserver, tmp_path):
    refused(
        recorder,
        httpserver,
        tmp_path,
        "custom_payload",
        '"#{id}"',
        "line 1 column 8",
        custom_payload='{"id": #{id}}',
    )


# 2. field_mappings, static_fields and nested_attribute_name

MAPPED = [{"field_name": "person", "column_name": "name"}]
REFUSED_SHAPES = {
    "duplicate field_name": (
        {"field_mappings": [*MAPPED, {"field_name": "person", "column_name": "id"}]},
        ["field_mappings", "'person'", "own field_name"],
    ),
    "empty field_name": (
        {"field_mappings": [*MAPPED, {"field_name": "", "column_name": "id"}]},
        ["field_mappings", "entry 2", "empty field_name"],
    ),
    "empty column_name": (
        {"field_mappings": [{"field_name": "id", "column_name": ""}]},
        ["field_mappings", "entry 1", "empty column_name"],
    ),
    "static field named like the nested attribute": (
        {"send_as_nested_attribute": True, "static_fields": {"records": 1}},
        ["static_fields", "'records'", "nested_attribute_name", "rename"],
    ),
    "static field named like the custom nested attribute": (
        {
            "send_as_nested_attribute": True,
            "nested_attribute_name": "items",
            "static_fields": {"items": []},
            "request_mode": "batch",
        },
        ["static_fields", "'items'", "nested_attribute_name"],
    ),
    "static field named like the form batch key": (
        {"body_format": "urlencoded", "request_mode": "batch", "static_fields": {"records": 1}},
        ["static_fields", "'records'", "nested_attribute_name"],
    ),
    "empty nested_attribute_name": (
        {"send_as_nested_attribute": True, "nested_attribute_name": ""},
        ["nested_attribute_name", "empty", "records"],
    ),
    "empty nested_attribute_name of a form batch": (
        {"body_format": "form_data", "request_mode": "one", "nested_attribute_name": ""},
        ["nested_attribute_name", "empty"],
    ),
}


@pytest.mark.parametrize("case", REFUSED_SHAPES)
def test_unusable_shaping_settings_are_refused_at_start(recorder, httpserver, tmp_path, case):
    settings, words = REFUSED_SHAPES[case]
    refused(recorder, httpserver, tmp_path, *words, **settings)


def test_a_refused_stream_setting_names_the_stream(recorder, httpserver, tmp_path):
    streams = {
        "people": {"field_mappings": [*MAPPED, {"field_name": "person", "column_name": "id"}]}
    }
    refused(recorder, httpserver, tmp_path, "people", "field_mappings", streams=streams)


def test_a_static_field_may_share_the_name_when_nothing_nests(recorder, httpserver, tmp_path):
    settings = {"static_fields": {"records": 1}}  # a single JSON record: no records key
    result = run_target(config(httpserver, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [body["records"] for body in recorder.bodies] == [1] * len(RECORDS)


# 3. form_data under a Content-Type header of the user's

ID_KEY = re.compile(r"records\[\d+\]\[id\]")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("given", ["multipart/form-data", "Multipart/Form-Data; charset=utf-8"])
def test_a_multipart_content_type_header_gets_the_boundary(
    recorder, httpserver, tmp_path, mode, given
):
    settings = {"body_format": "form_data", "headers": {"content-type": given}}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = []
    for seen in recorder.requests:
        assert seen.header("Content-Type").startswith(given + "; boundary="), seen.headers
        parsed.append(dict(form_pairs(seen)))  # werkzeug finds the parts by the boundary
    if mode == "single":
        assert parsed == [dict(form_leaves(record)) for record in RECORDS]
    else:
        expected: dict[str, str] = {}
        for index, record in enumerate(RECORDS):
            expected |= dict(form_leaves(record, f"records[{index}]"))
        ids = [v for body in parsed for k, v in body.items() if ID_KEY.fullmatch(k)]
        assert ids == [str(record["id"]) for record in RECORDS]
        if mode == "one":
            assert parsed == [expected]


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("application/x-custom", ["Content-Type", "'application/x-custom'", "form_data", "remove"]),
        ("application/x-www-form-urlencoded", ["Content-Type", "urlencoded"]),
        ("multipart/#{name}", ["Content-Type", "form_data"]),
        ("multipart/form-data; boundary=abc", ["Content-Type", "boundary"]),
    ],
)
def test_a_content_type_that_hides_the_boundary_is_refused(
    recorder, httpserver, tmp_path, given, words
):
    settings = {"body_format": "form_data", "headers": {"Content-Type": given}}
    refused(recorder, httpserver, tmp_path, *words, **settings)


# 4. csv_delimiter

DELIMITERS = st.characters(exclude_categories=("Cs",), exclude_characters='"\r\n')


def _texts(delimiter: str):
    """Text rich in the delimiter, quotes and line breaks."""
    return st.text(
        alphabet=st.one_of(
            st.sampled_from([delimiter, '"', "\r", "\n", ",", ";", " "]),
            st.characters(exclude_categories=("Cs",)),
        ),
        max_size=12,
    )


def _values(delimiter: str):
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.decimals(allow_nan=False, allow_infinity=False),
        _texts(delimiter),
    )


def parse(data: bytes, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))


@EXAMPLES
@given(DELIMITERS, st.data())
def test_an_automatic_csv_body_parses_back_with_its_delimiter(delimiter, data):
    texts = _texts(delimiter)
    columns = data.draw(st.lists(texts, min_size=1, max_size=5, unique=True))
    records = data.draw(
        st.lists(
            st.fixed_dictionaries({c: _values(delimiter) for c in columns}), min_size=1, max_size=3
        )
    )
    shaper = make_shaper(Shape(body_format="csv", csv_delimiter=delimiter), columns, single=False)
    body = shaper.new_body(spool=False)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    rows = parse(body.finish(), delimiter)
    assert rows[0] == columns
    assert len(rows) == len(records) + 1
    for row, record in zip(rows[1:], records, strict=True):
        assert len(row) == len(columns), row
        for cell, column in zip(row, columns, strict=True):
            assert same_text(cell, record[column]), (cell, record[column])


@EXAMPLES
@given(DELIMITERS, st.data())
def test_a_csv_template_quotes_values_holding_its_delimiter(delimiter, data):
    assume(delimiter not in "fixed")
    values = _values(delimiter)
    records = data.draw(
        st.lists(
            st.fixed_dictionaries({"a": values, "b": values, "c": values}), min_size=1, max_size=3
        )
    )
    d = delimiter
    shape = Shape(
        body_format="csv", custom_payload=f"#{{a}}{d}fixed{d}#{{b}}{d}#{{c}}", csv_delimiter=d
    )
    shaper = make_shaper(shape, [], single=False)
    body = shaper.new_body(spool=False)
    for index, record in enumerate(records):
        body.add(shaper.item(record, None, index))
    rows = parse(body.finish(), delimiter)
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert len(row) == 4, row
        assert row[1] == "fixed"
        for cell, value in zip([row[0], row[2], row[3]], [record[k] for k in "abc"], strict=True):
            assert same_text(cell, value), (cell, value)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_csv_delimiter_reaches_the_server(recorder, httpserver, tmp_path, mode):
    streams = {"people": {"csv_delimiter": ";", "custom_payload": "#{id};#{note};#{name}"}}
    settings = {"body_format": "csv", "streams": streams}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    body = b"".join(seen.body for seen in recorder.requests)
    rows = parse(body, ";")
    assert rows == [
        [str(r["id"]), "" if r["note"] is None else r["note"], r["name"]] for r in RECORDS
    ]


@pytest.mark.parametrize("mode", MODES)
def test_the_automatic_csv_body_uses_the_delimiter(recorder, httpserver, tmp_path, mode):
    settings = {"body_format": "csv", "csv_delimiter": "\t"}
    result = run_target(config(httpserver, mode, **settings), data_file(PEOPLE), tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [row for seen in recorder.requests for row in parse(seen.body, "\t")]
    header = rows[0]
    names = [row[header.index("name")] for row in rows if row != header]
    assert names == [r["name"] for r in RECORDS]


@pytest.mark.parametrize("delimiter", ['"', "\r", "\n", ";;", ""])
def test_an_unusable_csv_delimiter_is_refused_at_start(recorder, httpserver, tmp_path, delimiter):
    settings = {"body_format": "csv", "csv_delimiter": delimiter}
    refused(recorder, httpserver, tmp_path, "csv_delimiter", "one character", **settings)


def test_a_csv_template_split_by_another_character_is_refused(recorder, httpserver, tmp_path):
    settings = {"body_format": "csv", "custom_payload": "#{id};#{name}"}
    refused(
        recorder,
        httpserver,
        tmp_path,
        "custom_payload",
        "#{id}",
        "';'",
        "csv_delimiter",
        **settings,
    )


def test_a_csv_template_may_join_two_values_into_one_field(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/csv"),
        "body_format": "csv",
        "custom_payload": "#{id},#{name} #{name}",
    }
    result = run_target(config, data_file("users.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests[0].body.decode() == "1,Ada Ada\r\n"
