"""Shape records into body items, one shaper per body format.

Each shaper turns a record into an encoded item on arrival (`item`) and makes the body
that joins items into one request (`new_body`). Pure: no I/O, no Singer, no SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlencode

from target_restapi.shaping.bodies import (
    Body,
    CsvLines,
    MultipartBody,
    NdjsonBody,
    csv_escape,
    encode_json,
    field_text,
)
from target_restapi.shaping.mappings import FieldMapping, apply_mappings
from target_restapi.shaping.payload_templates import (
    FormPayload,
    JsonPayload,
    NdjsonPayload,
    TextPayload,
)
from target_restapi.templates import PLACEHOLDER, Template

BODY_FORMATS = ("json", "ndjson", "csv", "form_data", "urlencoded")
JSON_FORMATS = ("json", "ndjson")
NDJSON_TYPE = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Shape:
    """How a stream's records become a body: the body-shaping settings, parsed."""

    body_format: str = "json"
    custom_payload: str | None = None
    nested_attribute: str | None = None
    nested_attribute_name: str = "records"
    static_fields: Mapping[str, Any] = field(default_factory=dict)
    mappings: tuple[FieldMapping, ...] = ()
    set_field_name: bool = True
    csv_delimiter: str = ","

    def payload_template(self) -> JsonPayload | NdjsonPayload | FormPayload | TextPayload | None:
        """The parsed custom payload; ValueError says what is wrong with it."""
        if self.body_format in ("json", "ndjson"):
            return self.json_template()
        if self.body_format == "csv":
            return self.csv_template()
        return None if self.custom_payload is None else FormPayload(self.custom_payload)

    def json_template(self) -> JsonPayload | NdjsonPayload | None:
        """The custom payload of a JSON or NDJSON body (one document per line)."""
        if self.custom_payload is None:
            return None
        if self.body_format == "ndjson":
            return NdjsonPayload(self.custom_payload)
        return JsonPayload(self.custom_payload)

    def csv_template(self) -> TextPayload | None:
        """The custom payload as a CSV line, its values quoted for `csv_delimiter`."""
        if self.custom_payload is None:
            return None
        return TextPayload(self.custom_payload, partial(csv_escape, delimiter=self.csv_delimiter))

    def records_key(self, *, single: bool) -> str | None:
        """The body key that holds the records, which no static field may take.

        JSON wraps records only when asked (NDJSON never); form batches always key them as
        `records[0][...]`; CSV has no keys.
        """
        if self.body_format == "csv":
            return None
        if self.nested_attribute is not None:
            return self.nested_attribute
        if single or self.body_format in JSON_FORMATS:
            return None
        return self.nested_attribute_name


def shape_problem(shape: Shape, *, single: bool) -> str | None:
    """What makes these shaping settings wrong whatever the records are, if anything."""
    if not shape.nested_attribute_name:
        return (
            "setting 'nested_attribute_name' is empty; give the name of the attribute that "
            "holds the records, or leave it out for `records`"
        )
    if shape.body_format == "ndjson" and shape.nested_attribute is not None:
        return (
            "setting 'send_as_nested_attribute' wraps the records in one JSON object, but "
            "body_format ndjson sends each record as a line of its own; turn "
            "send_as_nested_attribute off, or use body_format json"
        )
    key = shape.records_key(single=single)
    if key is not None and key in shape.static_fields:
        return (
            f"setting 'static_fields' has the key '{key}', which is where the records go "
            "(nested_attribute_name); rename that static field or the nested attribute"
        )
    delimiter = shape.csv_delimiter
    if len(delimiter) != 1 or delimiter in '"\r\n':
        return (
            f"setting 'csv_delimiter' is {delimiter!r}; use one character other than a "
            "double quote, CR or LF, such as , ; | or a tab"
        )
    if shape.body_format == "csv" and shape.custom_payload is not None:
        return _csv_template_problem(Template.parse(shape.custom_payload), delimiter)
    return None


CSV_SEPARATORS = frozenset(",;|\t")


def _csv_template_problem(template: Template, delimiter: str) -> str | None:
    """Values are quoted for `csv_delimiter`: a template split by another delimiter is a slip.

    Two placeholders joined by one common delimiter character other than `csv_delimiter`
    (`#{id};#{name}` with `,`) would break on the first value holding the real one. Other
    text between them (`#{first} #{last}`) composes one field and is fine.
    """
    fields, between = template.fields, template.literals[1:-1]
    for first, separator, second in zip(fields[:-1], between, fields[1:], strict=True):
        if separator in CSV_SEPARATORS and separator != delimiter:
            return (
                f"setting 'custom_payload' separates #{{{first}}} and #{{{second}}} with "
                f"{separator!r}, not with csv_delimiter {delimiter!r}; set csv_delimiter to "
                "the character that separates the fields"
            )
    return None


# The media types of the other body formats: an NDJSON body sent under one would be read
# as a form or CSV. JSON-ish types (application/json, vendor types) stay the user's choice.
FOREIGN_TYPES = {
    "multipart/form-data": "form_data",
    "application/x-www-form-urlencoded": "urlencoded",
    "text/csv": "csv",
}


def content_type_problem(body_format: str, headers: Mapping[str, str]) -> str | None:
    """A Content-Type header a form_data or ndjson body cannot be sent under, if any.

    A multipart body is readable only with its boundary, which the target adds to a
    `multipart/form-data` header of the user's; any other type would hide it. JSON lines
    under a form or CSV type would be parsed as one.
    """
    if body_format not in ("form_data", "ndjson"):
        return None
    value = next((v for name, v in headers.items() if name.lower() == "content-type"), None)
    if value is None:
        return None
    media_type, _, parameters = value.partition(";")
    media_type = media_type.strip().lower()
    if body_format == "ndjson":
        if media_type not in FOREIGN_TYPES:
            return None
        return (
            f"header 'Content-Type' is {value!r}, but body_format ndjson sends JSON lines; "
            f"remove the header (the target sends {NDJSON_TYPE}), or use body_format "
            f"{FOREIGN_TYPES[media_type]}"
        )
    if media_type != "multipart/form-data" or PLACEHOLDER.search(value):
        return (
            f"header 'Content-Type' is {value!r}, but body_format form_data sends "
            "multipart/form-data with a boundary; remove the header, or write "
            "'multipart/form-data' (use body_format urlencoded for a urlencoded form)"
        )
    if "boundary" in parameters.lower():
        return (
            "header 'Content-Type' gives a multipart boundary, which must match the body's; "
            "remove 'boundary=...', the target adds each body's own"
        )
    return None


class Shaper(Protocol):
    """Turns records into body items and items into bodies.

    `raw_ok`: the item is the record's raw JSON, so the record need not be decoded.
    """

    raw_ok: bool

    def item(self, record: Mapping[str, Any], raw: bytes | None, index: int) -> Any:
        """The encoded item of one record; `index` is its place in the body."""

    def new_body(self, *, spool: bool) -> Body | MultipartBody:
        """An empty body for one request."""


def make_shaper(shape: Shape, columns: Sequence[str], *, single: bool) -> Shaper:
    """The shaper for a stream; `columns` are its SCHEMA's properties, in order."""
    if shape.body_format == "json":
        return JsonShaper(shape, single=single)
    if shape.body_format == "ndjson":
        return NdjsonShaper(shape, single=single)
    if shape.body_format == "csv":
        return CsvShaper(shape, columns)
    return FormShaper(shape, columns, single=single, multipart=shape.body_format == "form_data")


def _plain(shape: Shape, record: Mapping[str, Any], template: Any) -> Any:
    """The record as the automatic mapping or the custom payload shapes it."""
    if template is not None:
        return template.render(record)
    if shape.mappings:
        return apply_mappings(shape.mappings, record)
    return record


class JsonShaper:
    """JSON bodies; records pass through as their raw bytes when nothing reshapes them."""

    def __init__(self, shape: Shape, *, single: bool) -> None:
        self._shape = shape
        self._template = shape.json_template()
        self._static = dict(shape.static_fields)
        self._merge_static = bool(self._static) and shape.nested_attribute is None
        self.raw_ok = self._template is None and not shape.mappings and not self._merge_static
        self._single = single

    def item(self, record: Mapping[str, Any], raw: bytes | None, index: int) -> bytes:
        """The record's JSON bytes: raw when unchanged, else shaped and encoded."""
        if self.raw_ok and raw is not None:
            return raw
        return encode_json(self._document(self._shaped(record, raw)))

    def _shaped(self, record: Mapping[str, Any], raw: bytes | None) -> Any:
        """The filled custom payload, else the mapped record, else the record."""
        if self._template is not None:
            return self._template.render(record, raw)
        return _plain(self._shape, record, None)

    def _document(self, shaped: Any) -> Any:
        """A document with the static fields merged in, when they go into each document."""
        if self._merge_static:  # an object: records are, and settings refuse other templates
            return {**self._static, **shaped}
        return shaped

    def new_body(self, *, spool: bool) -> Body:
        """A bare record (single), an array, or an object holding the array."""
        name = self._shape.nested_attribute
        if name is None:
            if self._single:
                return Body(content_type="application/json")
            return Body(
                content_type="application/json",
                opening=b"[",
                separator=b",",
                closing=b"]",
                spool=spool,
            )
        beside = b"".join(
            b"," + encode_json(key) + b":" + encode_json(value)
            for key, value in self._static.items()
        )
        return Body(
            content_type="application/json",
            opening=b"{" + encode_json(name) + b":[",
            separator=b",",
            closing=b"]" + beside + b"}",
            spool=spool,
        )


class NdjsonShaper(JsonShaper):
    """NDJSON bodies: each record a line (a two-line template: two), each line ending in LF.

    Static fields and mappings apply to each record's line as in JSON; settings refuse
    static fields beside a template of several lines and nesting.
    """

    def item(self, record: Mapping[str, Any], raw: bytes | None, index: int) -> bytes:
        """The record's line(s) without the last newline, which the body adds."""
        if self.raw_ok and raw is not None:
            return raw
        shaped = self._shaped(record, raw)
        if self._template is None:
            return encode_json(self._document(shaped))
        return b"\n".join([encode_json(self._document(line)) for line in shaped])

    def new_body(self, *, spool: bool) -> NdjsonBody:
        """Lines joined and ended by LF, in every request mode."""
        return NdjsonBody(content_type=NDJSON_TYPE, separator=b"\n", closing=b"\n", spool=spool)


class CsvShaper:
    """CSV bodies: a header row when `set_field_name` is on, then one line per record."""

    def __init__(self, shape: Shape, columns: Sequence[str]) -> None:
        self._shape = shape
        self.raw_ok = False
        self._template = shape.csv_template()
        self._static = dict(shape.static_fields)
        named = [m.field_name for m in shape.mappings] or list(columns)
        self._columns = named + [name for name in self._static if name not in named]
        self._lines = CsvLines(shape.csv_delimiter)

    def item(self, record: Mapping[str, Any], raw: bytes | None, index: int) -> bytes:
        """One CSV line; a record field wins over a static field of the same name."""
        if self._template is not None:
            text = self._template.render(record)
            return (text if text.endswith("\n") else text + "\r\n").encode()
        shaped = _plain(self._shape, record, None)
        static = self._static
        return self._lines.line(
            [field_text(shaped[c] if c in shaped else static.get(c)) for c in self._columns]
        )

    def new_body(self, *, spool: bool) -> Body:
        """A body whose opening is the header row, when there is one."""
        header = b""
        if self._shape.set_field_name and self._template is None:
            header = self._lines.line(self._columns)
        return Body(content_type="text/csv", opening=header, spool=spool)


class FormShaper:
    """urlencoded and multipart bodies, with bracket keys for nesting and batches.

    Without field names, a key is the field's position among the SCHEMA's columns
    (static fields after them), so position N always means the same field, as in CSV.
    """

    def __init__(
        self, shape: Shape, columns: Sequence[str], *, single: bool, multipart: bool
    ) -> None:
        self._shape = shape
        self.raw_ok = False
        self._template = shape.payload_template()
        self._static = dict(shape.static_fields)
        named = [m.field_name for m in shape.mappings] or list(columns)
        self._positions = {name: str(i) for i, name in enumerate([*named, *self._static])}
        self._prefix = shape.records_key(single=single)
        self._multipart = multipart

    def item(self, record: Mapping[str, Any], raw: bytes | None, index: int) -> Any:
        """The record's fields as (key, text) pairs, keyed under `records[index]` in batches."""
        shaped = _plain(self._shape, record, self._template)
        fields = list(shaped.items()) if isinstance(shaped, Mapping) else shaped
        if self._prefix is None and self._static:
            taken = {key for key, _ in fields}
            fields += [(k, v) for k, v in self._static.items() if k not in taken]
        leaves = self._pairs(fields)
        if self._prefix is not None:
            pairs = [(f"{self._prefix}[{index}][{head}]{rest}", v) for head, rest, v in leaves]
        else:
            pairs = [(head + rest, v) for head, rest, v in leaves]
        return pairs if self._multipart else urlencode(pairs).encode()

    def new_body(self, *, spool: bool) -> Body | MultipartBody:
        """Static fields sit beside the bracketed records in batches."""
        beside = []
        if self._prefix is not None:
            beside = [(head + rest, v) for head, rest, v in self._pairs(self._static.items())]
        if self._multipart:
            return MultipartBody(beside)
        closing = b"&" + urlencode(beside).encode() if beside else b""
        return Body(
            content_type="application/x-www-form-urlencoded",
            separator=b"&",
            closing=closing,
            spool=spool,
        )

    def _pairs(self, fields: Iterable[tuple[str, Any]]) -> list[tuple[str, str, str]]:
        """(head, bracket-rest, text) for every leaf: `address[city]`, `tags[0]`.

        Keys a custom payload names stay as written; other keys become positions when
        `set_field_name` is off.
        """
        named = self._shape.set_field_name or self._template is not None
        out: list[tuple[str, str, str]] = []
        for key, value in fields:
            head, bracket, rest = key.partition("[")
            if not named:
                head = self._positions.setdefault(head, str(len(self._positions)))
            out.extend(_leaves(head, bracket + rest, value))
        return out


def _leaves(head: str, rest: str, value: Any) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _leaves(head, f"{rest}[{key}]", inner)
    elif isinstance(value, list):
        for position, inner in enumerate(value):
            yield from _leaves(head, f"{rest}[{position}]", inner)
    else:
        yield head, rest, field_text(value)
