"""The target's record validation accepts exactly what the SDK's own validator accepts.

The oracle is written here independently of target_restapi: singer-sdk 0.54's
`JSONSchemaValidator` (jsonschema `Draft202012Validator`, a format checker with no formats)
on the schema and record as the SDK reads them (`deserialize_json`, fractions as Decimal).
It differs from the SDK in two places only, where the SDK is wrong, and says so:
- `1.0`, `3.0`, `1e2` are integers (JSON Schema spec; jsonschema's rule for floats). The SDK's
  Decimals fail jsonschema's float-only rule, so it refuses them.
- `multipleOf` on a large quotient: the SDK raises decimal.InvalidOperation (a crash); the
  oracle then decides with enough precision.
Schemas and records are generated; records are raw JSON texts, so number spellings (`1.0`,
`1e2`, `-0`, huge integers, `1e400` beyond float64) reach the validator as a tap writes them.
"""

import decimal
import json
from decimal import Decimal

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord, MissingKeyPropertiesError
from singer_sdk.singerlib.json import deserialize_json
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR
from support.run import run_target

from target_restapi.singer_input.validation import RecordValidator, decode_record


def _integer(_checker, instance):
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return DEFAULT_JSONSCHEMA_VALIDATOR.TYPE_CHECKER.is_type(instance, "integer")


ORACLE = jsonschema.validators.extend(
    DEFAULT_JSONSCHEMA_VALIDATOR,
    type_checker=DEFAULT_JSONSCHEMA_VALIDATOR.TYPE_CHECKER.redefine("integer", _integer),
)


def sdk_accepts(schema_text: str, record_text: str, keys: list[str]) -> bool:
    """What the SDK decides for a record (plus the two corrections in the module doc)."""
    schema, record = deserialize_json(schema_text), deserialize_json(record_text)
    validator = ORACLE(schema, format_checker=jsonschema.FormatChecker(formats=()))
    try:
        valid = validator.is_valid(record)
    except decimal.InvalidOperation:
        with decimal.localcontext() as context:
            context.prec = 5000
            valid = validator.is_valid(record)
    return valid and all(key in record for key in keys)


def target_accepts(schema_text: str, record_text: str, keys: list[str]) -> tuple[bool, bool]:
    """What the target decides on the raw bytes (`check`) and on the decoded dict."""
    schema = msgspec.json.decode(schema_text)  # as the reader decodes a SCHEMA message
    validator = RecordValidator(schema, "s", keys)
    raw = record_text.encode()
    verdicts = []
    for attempt in (
        lambda: validator.check(raw),
        lambda: validator.validate(decode_record(raw, "s")),
    ):
        try:
            attempt()
            verdicts.append(True)
        except (InvalidRecord, MissingKeyPropertiesError):
            verdicts.append(False)
    return verdicts[0], verdicts[1]


# Schemas

SIMPLE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "at": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": ["object", "null"], "properties": {"city": {"type": "string"}}},
    },
    "required": ["id"],
}

NAMES = ["a", "b", "é", "$ref"]
NUMBER_TEXTS = ["1", "1.0", "3.0", "1e2", "1E+2", "-0", "-0.0", "0.1", "0.3", "2.5", "-7"]
NUMBER_TEXTS += ["1e400", "-1e400", "1e-400", "123456789012345678901234567890", "1E-38"]
NUMBER_TEXTS += ["1.0000000000000000001", "9007199254740993", "0.30000000000000004"]
STRINGS = ["", "x", "abc", "abc\n", "123", "١٢٣", "é", "éé", "😀", "2026-11-28T10:00:00Z"]
STRINGS += ["not a date", "a@b.co", "2026-13-45", "ab"]
PATTERNS = [r"^\d+$", r"\d", r"^[a-z]+$", r"c$", r"^.{2}$", r"[$]", r"^\w+$", r"é", r"^$"]
FORMATS = ["date-time", "date", "email", "uri", "ipv4", "uuid", "regex", "no-such-format"]

numbers = st.one_of(
    st.integers(-10, 10),
    st.sampled_from([0.1, 0.5, 2.5, -1.5, 1e-38, 1e38, 0.30000000000000004, 10**20]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(STRINGS))
literals = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.just("a"), scalars))
kinds = st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])


def _with(base: dict, extra: st.SearchStrategy) -> st.SearchStrategy:
    return extra.map(lambda more: {**base, **more})


@st.composite
def typed(draw) -> dict:
    """A schema with a `type` (maybe a list with null) and keywords for that type."""
    first = draw(kinds.filter(lambda k: k not in ("object", "array")))
    kind = draw(st.sampled_from([first, [first, "null"], ["null", first], [first, "number"]]))
    if first in ("null", "number") and isinstance(kind, list):
        kind = first  # a type list must not repeat a type
    schema = {"type": kind}
    if first in ("integer", "number"):
        for word in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]:
            if draw(st.integers(0, 3)) == 0:
                schema[word] = draw(numbers)
        if draw(st.integers(0, 3)) == 0:
            step = [0.5, 0.1, 0.01, 1e-38, 3, 1, 2.5, 0.3, 1e-10]
            schema["multipleOf"] = draw(st.sampled_from(step))
    if first == "string":
        if draw(st.booleans()):
            schema["minLength"] = draw(st.integers(0, 3))
        if draw(st.booleans()):
            schema["maxLength"] = draw(st.integers(0, 3))
        if draw(st.integers(0, 2)) == 0:
            schema["pattern"] = draw(st.sampled_from(PATTERNS))
        if draw(st.integers(0, 2)) == 0:
            schema["format"] = draw(st.sampled_from(FORMATS))
    return schema


leaves = st.one_of(
    typed(),
    st.lists(literals, min_size=1, max_size=4, unique_by=json.dumps).map(lambda v: {"enum": v}),
    literals.map(lambda value: {"const": value}),
    st.just({}),
    st.just({"format": "date-time"}),
    st.booleans(),
)


def _objects(children: st.SearchStrategy, extras: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        lambda props, required, extra, nullable: {
            "type": ["object", "null"] if nullable else "object",
            "properties": props,
            **({"required": required} if required else {}),
            **({} if extra is None else {"additionalProperties": extra}),
        },
        st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
        st.lists(st.sampled_from(NAMES), unique=True, max_size=2),
        extras,
        st.booleans(),
    )


def _arrays(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda items: {"type": "array", "items": items}, children)


def _composites(children: st.SearchStrategy) -> st.SearchStrategy:
    some = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        _objects(children, st.one_of(st.none(), st.booleans(), children)),
        _arrays(children),
        some.map(lambda c: {"anyOf": c}),
        some.map(lambda c: {"oneOf": c}),
        some.map(lambda c: {"allOf": c}),
        children.map(lambda c: {"not": c}),
    )


# The msgspec path's shapes: types (maybe with null), nested objects and arrays.
plain_leaves = st.one_of(
    st.sampled_from(["string", "integer", "number", "boolean"]).flatmap(
        lambda kind: st.sampled_from([{"type": kind}, {"type": [kind, "null"]}])
    ),
    st.just({"type": "string", "format": "date-time"}),
    st.just({}),
)
plain = st.recursive(
    plain_leaves,
    lambda c: st.one_of(_objects(c, st.sampled_from([None, True])), _arrays(c)),
    max_leaves=4,
)
rich = st.recursive(leaves, _composites, max_leaves=6)


@st.composite
def root_schemas(draw) -> dict:
    """A stream's schema: an object (or object-or-null, or untyped) with properties."""
    family = draw(st.sampled_from([plain, rich, st.one_of(plain, typed())]))
    props = draw(st.dictionaries(st.sampled_from(NAMES), family, min_size=1, max_size=4))
    kind = draw(st.sampled_from(["object", ["object", "null"], None]))
    schema = {"type": kind, "properties": props}
    if schema["type"] is None:
        del schema["type"]
    required = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2))
    if required:
        schema["required"] = required
    extra = draw(st.one_of(st.none(), st.booleans(), family))
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


# Records, as raw JSON text


def _string_text(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)


value_texts = st.recursive(
    st.one_of(
        st.sampled_from(NUMBER_TEXTS),
        st.integers().map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["true", "false", "null"]),
        st.builds(_string_text, st.sampled_from(STRINGS) | st.text(max_size=4), st.booleans()),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=2).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=4,
)
record_texts = st.dictionaries(st.sampled_from([*NAMES, "z"]), value_texts, max_size=4).map(
    lambda d: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in d.items()) + "}"
)


def _valid_schema(schema: dict) -> bool:
    try:
        DEFAULT_JSONSCHEMA_VALIDATOR.check_schema(deserialize_json(json.dumps(schema)))
    except jsonschema.SchemaError:
        return False
    return True


# About 15 s on a loaded machine; runs of 4,000 examples found nothing more.
PARITY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PARITY
@given(
    schema=root_schemas().filter(_valid_schema),
    records=st.lists(record_texts, min_size=1, max_size=4),
    keys=st.lists(st.sampled_from(NAMES[:2]), unique=True, max_size=1),
)
def test_the_target_accepts_exactly_what_the_sdk_accepts(schema, records, keys):
    schema_text = json.dumps(schema)
    for record_text in records:
        expected = sdk_accepts(schema_text, record_text, keys)
        on_bytes, on_dict = target_accepts(schema_text, record_text, keys)
        assert (on_bytes, on_dict) == (expected, expected), (schema_text, record_text)


@PARITY
@given(schema=typed(), value=value_texts)
def test_one_typed_property_on_the_fast_path(schema, value):
    """The common shape: one typed property, each number spelling and bound."""
    schema_text = json.dumps({"type": "object", "properties": {"a": schema}})
    record_text = '{"a": ' + value + "}"
    expected = sdk_accepts(schema_text, record_text, [])
    assert target_accepts(schema_text, record_text, []) == (expected, expected), record_text


@pytest.mark.parametrize(
    ("kind", "text", "accepted"),
    [
        ("integer", "1.0", True),
        ("integer", "3.0", True),
        ("integer", "1e2", True),
        ("integer", "-0", True),
        ("integer", "1.5", False),
        ("integer", "1.0000000000000000001", False),
        ("integer", "123456789012345678901234567890", True),
        ("number", "1e400", True),
        ("number", "-1e400", True),
        ("integer", "true", False),
    ],
)
def test_number_spellings(kind, text, accepted):
    schema_text = json.dumps({"type": "object", "properties": {"a": {"type": kind}}})
    assert target_accepts(schema_text, '{"a": ' + text + "}", []) == (accepted, accepted)


def test_a_schema_the_sdk_refuses_is_refused_with_one_clear_line():
    with pytest.raises(InvalidJSONSchema, match=r"stream 's'.*Draft 2020-12.*fix the tap"):
        RecordValidator({"type": "object", "properties": {"a": {"type": "text"}}}, "s", [])


def test_records_the_sdk_accepts_reach_the_server_as_written(recorder, httpserver, tmp_path):
    """End to end: `1.0` integers, a tap-postgres style `multipleOf`, `$` before a newline."""
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "amount": {"type": ["number", "null"], "multipleOf": 1e-38, "maximum": 1e38},
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "at": {"type": "string", "format": "date-time"},
        },
    }
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]}),
        '{"type": "RECORD", "stream": "s", "record": {"id": 1.0, "amount": 12.34, "code": "AB",'
        ' "at": "2026-11-28T10:00:00Z"}}',
        '{"type": "RECORD", "stream": "s", "record": {"id": 2, "amount": 1e2, "code": "CD\\n",'
        ' "at": "not checked"}}',
    ]
    config = {"url": httpserver.url_for("/in")}
    result = run_target(config, "\n".join(lines) + "\n", tmp_path)
    assert result.returncode == 0, result.stderr
    bodies = [seen.body for seen in recorder.requests]
    assert bodies == [
        b'{"id": 1.0, "amount": 12.34, "code": "AB", "at": "2026-11-28T10:00:00Z"}',
        b'{"id": 2, "amount": 1e2, "code": "CD\\n", "at": "not checked"}',
    ]


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        (SIMPLE_SCHEMA, "msgspec"),
        ({**SIMPLE_SCHEMA, "additionalProperties": False}, "fastjsonschema"),
        (
            {"type": "object", "properties": {"a": {"type": "number", "maximum": 1e38}}},
            "fastjsonschema",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            },
            "fastjsonschema",
        ),
        ({"type": "object", "properties": {"a": {"multipleOf": 1e-38}}}, "fastjsonschema"),
        ({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}}, "jsonschema"),
        ({"type": "object", "properties": {"a": {"enum": [[1]]}}}, "jsonschema"),
    ],
)
def test_common_schemas_keep_a_fast_path(schema, path):
    """Speed without timing: which check accepts valid records of each kind of schema."""
    assert RecordValidator(schema, "s", ["id"]).fast_path == path
