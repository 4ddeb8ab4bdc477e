"""Custom payload templates: a body shape written by the user, filled from each record.

JSON templates are parsed once: a string that is exactly `"#{field}"` takes the field's
typed value, `"#{*}"` the whole record (its raw JSON text when there is one), other
strings (object keys too) are filled as text. Constants are sent as written (`1.10` stays
`1.10`); what JSON cannot say once (a key given twice, `NaN`, a placeholder outside quotes)
is refused with its place. An NDJSON template is one such JSON template per line. Form
templates (`a=#{x}&b=#{y}`) become (key, value) template pairs, so nothing needs escaping
by hand. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from target_restapi.shaping.bodies import JsonNumber
from target_restapi.templates import MISSING, PLACEHOLDER, WHOLE_RECORD, Template, lookup

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_CONSTANT = re.compile(r"-?(?:NaN|Infinity)")
_NOT_NEWLINE = re.compile(r"[^\n]")


class JsonPayload:
    """A JSON body template whose placeholders keep the field's type when they stand alone."""

    def __init__(self, text: str) -> None:
        self._shape = _compile(_load(text), "$")
        self.fields = tuple(_fields(self._shape))
        self.is_object = isinstance(self._shape, _Object)

    def render(self, record: Mapping[str, Any], raw: bytes | None = None) -> Any:
        """The template filled from `record`, as JSON-ready data; `raw` is its JSON text."""
        return _render(self._shape, record, raw)


class NdjsonPayload:
    """An NDJSON body template: one JSON template per line, each filled line sent as a line.

    Two lines make bulk bodies, such as Elasticsearch's action line then the document.
    Each line is parsed as in the whole template, so errors give the template's own line
    and column; blank lines are skipped.
    """

    def __init__(self, text: str) -> None:
        self._lines: list[JsonPayload] = []
        start = 0
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                # The lines before it blanked out, their newlines kept: positions stay true.
                alone = _NOT_NEWLINE.sub(" ", text[:start]) + line
                try:
                    self._lines.append(JsonPayload(alone))
                except ValueError as exc:
                    raise ValueError(
                        f"{exc} (in line {number}; body_format ndjson takes one JSON "
                        "document per line)"
                    ) from None
            start += len(line) + 1
        if not self._lines:
            raise ValueError("custom_payload is empty; write one JSON document per line")
        self.fields = tuple(field for line in self._lines for field in line.fields)
        self.is_object = len(self._lines) == 1 and self._lines[0].is_object
        self.lines = len(self._lines)

    def render(self, record: Mapping[str, Any], raw: bytes | None = None) -> list[Any]:
        """The filled lines of one record, as JSON-ready data."""
        return [line.render(record, raw) for line in self._lines]


class _Whole:
    """A template string that is a single placeholder: replaced by the typed value."""

    __slots__ = ("field",)

    def __init__(self, field: str) -> None:
        self.field = field


class _Object:
    """A template object: (key, value) pairs, a key being text or a Template."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str | Template, Any]]) -> None:
        self.items = items


class _Pairs(list):
    """A JSON object as its (key, value) pairs in order, so that a repeated key shows."""


def _load(text: str) -> Any:
    """The template's JSON, numbers keeping their spelling; ValueError says where it is wrong."""
    bare = _blank_strings(text)
    for placeholder in PLACEHOLDER.finditer(text):
        if bare[placeholder.start()] != "#":
            continue  # inside a string
        found = placeholder.group()
        raise ValueError(
            f"custom_payload has {found} outside quotes at {_where(text, placeholder.start())}; "
            f'write it as "{found}" (a string that is only the placeholder keeps the type)'
        )
    if constant := _CONSTANT.search(bare):
        raise ValueError(
            f"custom_payload has {constant.group()} at {_where(text, constant.start())}, "
            "which is not JSON; write null or a string"
        )
    try:
        return json.loads(
            text, object_pairs_hook=_Pairs, parse_float=JsonNumber, parse_int=_integer
        )
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"custom_payload is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (character {exc.pos})"
        ) from None


def _blank_strings(text: str) -> str:
    """`text` with every JSON string's inside blanked, positions unchanged."""
    return _STRING.sub(lambda string: '"' + " " * (len(string.group()) - 2) + '"', text)


def _where(text: str, position: int) -> str:
    """`line L column C` of a character, counted from 1 as JSON errors count them."""
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return f"line {line} column {column}"


def _integer(text: str) -> int | JsonNumber:
    """An integer, kept as its text where Python's int would respell (`-0`) or be slow."""
    return JsonNumber(text) if text == "-0" or len(text) > 18 else int(text)


def _compile(node: Any, path: str) -> Any:
    if isinstance(node, _Pairs):
        if (twice := _repeated(key for key, _ in node)) is not None:
            raise ValueError(
                f"custom_payload has the key {_quoted(twice)} twice in the object at "
                f"{path}; keep one of them"
            )
        return _Object(
            [(_text(key, path), _compile(value, _member(path, key))) for key, value in node]
        )
    if isinstance(node, list):
        return [_compile(value, f"{path}[{i}]") for i, value in enumerate(node)]
    if isinstance(node, str) and PLACEHOLDER.search(node):
        match = PLACEHOLDER.fullmatch(node)
        if match is None:
            return _in_text(node, f"the string {_quoted(node)} at {path}")
        field = match.group(1).strip()
        return _RECORD if field == WHOLE_RECORD else _Whole(field)
    return node


_RECORD = object()  # the compiled `"#{*}"`: the whole record


def _in_text(text: str, where: str) -> Template:
    """A string or key filled as text, where the whole record cannot go."""
    template = Template.parse(text)
    if WHOLE_RECORD in template.fields:
        raise ValueError(
            f"custom_payload has #{{{WHOLE_RECORD}}} in {where}; the whole record goes only "
            f'in a string value of its own: "#{{{WHOLE_RECORD}}}"'
        )
    return template


def _repeated(keys: Iterable[str]) -> str | None:
    """The first key that comes a second time, if any."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None


def _member(path: str, key: str) -> str:
    """The path of an object member: `$.user`, or `$["two words"]`."""
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{_quoted(key)}]"


def _quoted(key: str) -> str:
    """A key as a JSON string, so that spaces, quotes and empty keys show."""
    return json.dumps(key, ensure_ascii=False)


def _text(key: str, path: str) -> str | Template:
    """An object key: always text, so a placeholder in it is filled as text."""
    if not PLACEHOLDER.search(key):
        return key
    return _in_text(key, f"the key {_quoted(key)} of the object at {path}")


def _fields(node: Any) -> list[str]:
    if isinstance(node, _Object):
        return [f for key, value in node.items for f in [*_fields(key), *_fields(value)]]
    if isinstance(node, list):
        return [f for value in node for f in _fields(value)]
    if isinstance(node, _Whole):
        return [node.field]
    if node is _RECORD:
        return [WHOLE_RECORD]
    if isinstance(node, Template):
        return list(node.fields)
    return []


def _render(node: Any, record: Mapping[str, Any], raw: bytes | None) -> Any:
    if isinstance(node, _Object):
        return {_render(key, record, raw): _render(value, record, raw) for key, value in node.items}
    if isinstance(node, list):
        return [_render(value, record, raw) for value in node]
    if isinstance(node, _Whole):
        value = lookup(record, node.field)
        return None if value is MISSING else value
    if node is _RECORD:  # the record's own text when there is one: sent as it came in
        return record if raw is None else msgspec.Raw(raw)
    if isinstance(node, Template):
        return node.render(record, null="")
    return node


class FormPayload:
    """A form template such as `name=#{name}&id=#{id}`: keys and values filled as text."""

    def __init__(self, text: str) -> None:
        self._pairs = [
            (Template.parse(key), Template.parse(value))
            for key, value in parse_qsl(text, keep_blank_values=True)
        ]
        if not self._pairs:
            raise ValueError("custom_payload for a form body must look like `key=#{field}&...`")
        self.fields = tuple(f for pair in self._pairs for t in pair for f in t.fields)

    def render(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (key, value) pairs of one record."""
        return [(k.render(record, null=""), v.render(record, null="")) for k, v in self._pairs]


class TextPayload:
    """A text template (CSV line) whose values are escaped for the format by `escape`."""

    def __init__(self, text: str, escape: Callable[[str], str]) -> None:
        self._template = Template.parse(text)
        self._escape = escape
        self.fields = self._template.fields

    def render(self, record: Mapping[str, Any]) -> str:
        """The filled text of one record."""
        return self._template.render(record, self._escape, null="")
