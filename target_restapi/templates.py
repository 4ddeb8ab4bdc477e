"""`#{field}` templates for URLs and header values: parsed once, rendered per record.

Pure functions over plain data: no I/O, no Singer, no SDK.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import msgspec

from target_restapi.errors import RecordError

PLACEHOLDER = re.compile(r"#\{([^{}]+)\}")
MISSING = object()
# `#{*}` is the whole record, not a field: only a JSON custom_payload string can hold it
# (`"#{*}"`, for JSON and NDJSON bodies); anywhere else it is refused at start-up.
WHOLE_RECORD = "*"
_json = msgspec.json.Encoder(decimal_format="number")


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """Value of a field by name, or by dotted path into nested objects.

    A field whose own name contains a dot wins over the nested reading.
    """
    value = record.get(path, MISSING)
    if value is not MISSING or "." not in path:
        return value
    value = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return MISSING
        value = value.get(step, MISSING)
    return value


def schema_node(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The schema of a field by name or dotted path, or None when it is not declared."""
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties") or {}
    if path in properties:
        return properties[path]
    node: Mapping[str, Any] = schema
    for step in path.split("."):
        properties = node.get("properties") or {}
        if step not in properties:
            return None
        node = properties[step]
    return node


def as_text(value: Any) -> str:
    """The text a value takes inside a URL or header: JSON spelling for non-strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return _json.encode(value).decode()


@dataclass(frozen=True, slots=True)
class Template:
    """A string with `#{field}` placeholders, split once into literals and field paths."""

    text: str
    literals: tuple[str, ...]
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """Split `text` into literal pieces and the field paths between them."""
        pieces = PLACEHOLDER.split(text)
        return cls(
            text=text,
            literals=tuple(pieces[0::2]),
            fields=tuple(name.strip() for name in pieces[1::2]),
        )

    def render(
        self,
        record: Mapping[str, Any],
        escape: Callable[[str], str] = str,
        null: str | None = None,
    ) -> str:
        """Fill the placeholders from `record`, passing each value's text through `escape`.

        A null or missing value becomes `null` when given; otherwise it is a record
        error, so it never turns into the text `None`.
        """
        if not self.fields:
            return self.text
        out = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            value = lookup(record, field)
            if value is None or value is MISSING:
                if null is None:
                    state = "null" if value is None else "missing"
                    raise RecordError(
                        f"field '{field}' is {state} but the template {self.text!r} needs "
                        "it; give every record a value for it or change the template"
                    )
                out.append(null)
            else:
                out.append(escape(as_text(value)))
            out.append(literal)
        return "".join(out)


def whole_record_problem(setting: str, template: Template) -> str | None:
    """Why `template` cannot use `#{*}` (the whole record), or None when it does not."""
    if WHOLE_RECORD not in template.fields:
        return None
    return (
        f"setting '{setting}' uses #{{{WHOLE_RECORD}}}, the whole record, which only a JSON "
        f'or NDJSON custom_payload can hold (as the string "#{{{WHOLE_RECORD}}}"); name a '
        "field instead"
    )


DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def quote_url_value(text: str) -> str:
    """Percent-encode a value so that it stays inside its URL component (`/`, `?` too).

    A value of `.` or `..` is encoded as well: as a path segment it would walk the path
    (`/tenants/../users/1` is `/users/1`); `url_safety.DotSafeSession` keeps it encoded.
    """
    return DOT_SEGMENTS.get(text) or quote(text, safe="")


def render_url(template: Template, record: Mapping[str, Any]) -> str:
    """Render a URL template with every value percent-encoded."""
    return template.render(record, quote_url_value)


# What a header field can carry byte for byte (RFC 9110): a token for the name; for the
# value tab, space, visible ASCII and Latin-1 letters, not at its edges space or tab.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSENDABLE = re.compile(r"[^\t\x20-\x7e\xa0-\xff]")


def header_name_problem(name: str) -> str | None:
    """Why `name` cannot be a header name, or None."""
    if _TOKEN.fullmatch(name):
        return None
    return "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value exactly as it is, or None.

    Names the character, never the value: a header value may be a secret.
    """
    if "\r" in value or "\n" in value:
        return "has a line break (CR or LF), which would let a value inject headers"
    bad = _UNSENDABLE.search(value)
    if bad is not None:
        char = bad.group()
        name = unicodedata.name(char, "a control character")
        return (
            f"has U+{ord(char):04X} ({name}) at character {bad.start() + 1}: HTTP headers "
            "carry only tab, visible ASCII and Latin-1 letters"
        )
    if value[:1].isspace() or value[-1:].isspace():
        return "begins or ends with white space, which HTTP drops or refuses in header values"
    return None


def check_header_value(name: str, value: str) -> str:
    """A rendered header value as it is, or RecordError saying why it cannot be sent."""
    problem = header_value_problem(value)
    if problem is not None:
        raise RecordError(f"header '{name}' {problem}; change the field or the header template")
    return value
