"""Record validation against a stream's SCHEMA, compiled once per schema.

The common schemas (types, properties, required, items) become a msgspec type, so a
record's raw JSON is checked in one native pass without building a dict. Anything
richer (anyOf, enum, patterns, bounds, ...) uses fastjsonschema on the decoded record.
Formats are not checked, as in the SDK by default: values pass through as received.
"""

from __future__ import annotations

from typing import Any, Union

import fastjsonschema
import msgspec
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord, MissingKeyPropertiesError
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_restapi.encoding import JsonNumber
from target_restapi.errors import InputError

SIMPLE = {"string": str, "integer": int, "number": float, "boolean": bool, "null": None}
HARMLESS = {
    "type",
    "properties",
    "items",
    "required",
    "format",
    "description",
    "title",
    "additionalProperties",
    "default",
    "examples",
    "$schema",
    "$id",
}
_records = msgspec.json.Decoder(dict[str, Any], float_hook=JsonNumber)


def decode_record(raw: bytes) -> dict[str, Any]:
    """The record as a dict; numbers with a fraction keep their exact text."""
    try:
        return _records.decode(raw)
    except msgspec.DecodeError as exc:
        raise InputError(f"the record is not a JSON object ({exc})") from None


class _Unsupported(Exception):
    """The schema uses a keyword the msgspec translation does not cover."""


def _type_of(schema: Any, name: str) -> Any:
    """The msgspec type for a JSON schema, or _Unsupported."""
    if not isinstance(schema, dict) or set(schema) - HARMLESS:
        raise _Unsupported
    if schema.get("additionalProperties") is False:
        raise _Unsupported
    declared = schema.get("type")
    if declared is None:
        return Any
    kinds = [declared] if isinstance(declared, str) else list(declared)
    members = []
    for kind in kinds:
        if kind in SIMPLE:
            members.append(SIMPLE[kind])
        elif kind == "object":
            members.append(_struct(schema, name) if "properties" in schema else dict)
        elif kind == "array":
            members.append(list[_type_of(schema["items"], name)] if "items" in schema else list)
        else:
            raise _Unsupported
    if str in members and len(members) > 1 and any(m in (dict, list) for m in members):
        raise _Unsupported
    return Union[tuple(members)] if len(members) > 1 else members[0]  # noqa: UP007


def _struct(schema: dict, name: str, key_properties: tuple[str, ...] = ()) -> Any:
    required = set(schema.get("required") or ()) | set(key_properties)
    fields = []
    rename = {}
    for position, (prop, sub) in enumerate((schema.get("properties") or {}).items()):
        attr = f"f{position}"
        rename[attr] = prop
        kind = _type_of(sub, f"{name}_{position}")
        fields.append((attr, kind) if prop in required else (attr, kind, msgspec.UNSET))
    missing = required - set(rename.values())
    fields += [(f"k{i}", Any) for i, _ in enumerate(sorted(missing))]
    rename.update({f"k{i}": prop for i, prop in enumerate(sorted(missing))})
    return msgspec.defstruct(name, fields, rename=rename)


class RecordValidator(BaseJSONSchemaValidator):
    """Validates one stream's records; `check` takes raw JSON, `validate` a dict (SDK).

    Errors are the SDK's own exception types (InvalidRecord, MissingKeyPropertiesError),
    with messages that name the stream and what to do.
    """

    def __init__(self, schema: dict[str, Any], stream: str, key_properties: list[str]) -> None:
        super().__init__(schema)
        self._stream = stream
        self._keys = tuple(key_properties)
        self._decoder: msgspec.json.Decoder | None = None
        self._full: Any = None
        try:
            if schema.get("type", "object") in ("object", ["object"]):
                self._struct = _struct(schema, "Record", self._keys)
            else:
                self._struct = _type_of(schema, "Record")
            self._decoder = msgspec.json.Decoder(self._struct)
        except (_Unsupported, TypeError):
            self._full = self._compile()

    def check(self, raw: bytes) -> dict[str, Any] | None:
        """Validate raw record JSON; return the decoded dict when one had to be built."""
        if self._decoder is not None:
            try:
                self._decoder.decode(raw)
                return None
            except msgspec.ValidationError as exc:
                if "out of range" not in str(exc):  # beyond float/int64: ask the full check
                    raise self._error(str(exc), raw) from None
            except msgspec.DecodeError as exc:
                raise InputError(f"the record is not valid JSON ({exc})") from None
        record = decode_record(raw)
        self._check_full(record)
        return record

    def validate(self, record: dict[str, Any]) -> None:
        """Validate a decoded record (the SDK's interface, used for mapped streams)."""
        self._check_full(record)
        for key in self._keys:
            if key not in record:
                raise self._error(f"Object missing required field `{key}`", record)

    def _check_full(self, record: dict[str, Any]) -> None:
        self._full = self._full or self._compile()
        try:
            self._full(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise self._error(exc.message, record) from None

    def _compile(self) -> Any:
        try:
            return fastjsonschema.compile(self.schema, use_default=False, use_formats=False)
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise InvalidJSONSchema(
                f"the SCHEMA of stream '{self._stream}' is not a valid JSON schema: {exc}"
            ) from None

    def _error(self, detail: str, record: Any) -> Exception:
        for key in self._keys:
            if detail == f"Object missing required field `{key}`":
                return MissingKeyPropertiesError(
                    f"a record of stream '{self._stream}' lacks key property '{key}'; "
                    "fix the tap's output or its key_properties"
                )
        return InvalidRecord(
            f"a record of stream '{self._stream}' does not match its SCHEMA: {detail}; "
            "fix the tap's output, or set validate_records to false",
            record,
        )
