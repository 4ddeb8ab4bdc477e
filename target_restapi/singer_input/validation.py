"""Record validation against a stream's SCHEMA, compiled once per schema.

Semantics are the SDK's (jsonschema, Draft 2020-12, formats not checked): see
schema_reference.py, which decides every rejection. Two fast paths only ever accept:
the common schemas (types, properties, required, items) become a msgspec type, so a
record's raw JSON is checked in one native pass without building a dict; other schemas,
and records msgspec refuses, go to fastjsonschema (fast_schema.py) on the decoded record
where it reads the schema's keywords as jsonschema does. A fast path may be stricter than
JSON Schema (msgspec refuses `1.0` for an integer and numbers beyond float64): its refusal
only passes the record on to the next check.
"""

from __future__ import annotations

import functools
from types import GenericAlias
from typing import Any, Union

import fastjsonschema
import msgspec

from target_restapi.errors import InputError
from target_restapi.sdk_seam import (
    BaseJSONSchemaValidator,
    InvalidRecord,
    MissingKeyPropertiesError,
)
from target_restapi.shaping.bodies import JsonNumber
from target_restapi.singer_input.fast_schema import compile_fast
from target_restapi.singer_input.schema_reference import ReferenceCheck

SIMPLE = {"string": str, "integer": int, "number": float, "boolean": bool, "null": None}
ANNOTATIONS = {"format", "description", "title", "default", "examples", "$schema", "$id"}
HARMLESS = {"type", "properties", "items", "required", "additionalProperties", *ANNOTATIONS}
COMPILED_SCHEMAS = 256  # distinct schemas whose checks are kept; most runs have a few
_records = msgspec.json.Decoder(dict[str, Any], float_hook=JsonNumber)


def decode_record(raw: bytes, stream: str) -> dict[str, Any]:
    """The record as a dict; numbers with a fraction keep their exact text."""
    try:
        return _records.decode(raw)
    except msgspec.DecodeError as exc:
        raise InputError(
            f"a record of stream '{stream}' is not a JSON object ({exc}); fix the tap's output"
        ) from None


class _Unsupported(Exception):
    """The schema uses a keyword the msgspec translation does not cover."""


def _translatable(schema: Any) -> dict[str, Any]:
    """The schema, if its keywords are all ones the msgspec translation covers."""
    if not isinstance(schema, dict) or set(schema) - HARMLESS:
        raise _Unsupported
    if schema.get("additionalProperties", True) is not True:
        raise _Unsupported
    return schema


def _type_of(schema: Any, name: str) -> Any:
    """The msgspec type for a JSON schema, or _Unsupported."""
    declared = _translatable(schema).get("type")
    if declared is None:
        if set(schema) - ANNOTATIONS:
            raise _Unsupported
        return Any
    kinds = [declared] if isinstance(declared, str) else list(declared)
    members: list[Any] = []
    for kind in kinds:
        if kind in SIMPLE:
            members.append(SIMPLE[kind])
        elif kind == "object":
            shaped = "properties" in schema or "required" in schema
            members.append(_struct(schema, name) if shaped else dict)
        elif kind == "array":
            members.append(
                GenericAlias(list, _type_of(schema["items"], name)) if "items" in schema else list
            )
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
    # Untracked by the garbage collector: one is made per record, only to be dropped.
    return msgspec.defstruct(name, fields, rename=rename, gc=False)


def _msgspec_decoder(schema: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """A typed decoder that accepts only records the schema accepts, or None."""
    try:
        declared = _translatable(schema).get("type", "object")
        if "object" not in ([declared] if isinstance(declared, str) else declared):
            return None
        # A record is always a JSON object (decode_record refuses others): one struct.
        return msgspec.json.Decoder(_struct(schema, "Record", keys))
    except (_Unsupported, TypeError):
        return None


class _Schema:
    """A stream's schema and key properties, equal to another when their JSON is.

    The key under which checks are compiled once for every stream with this schema:
    compiling costs milliseconds, and taps often send thousands of streams alike.
    `stream` only names the stream in a bad schema's error, raised before caching.
    """

    __slots__ = ("keys", "schema", "stream", "text")

    def __init__(self, schema: dict[str, Any], stream: str, keys: tuple[str, ...]) -> None:
        self.schema, self.stream, self.keys = schema, stream, keys
        try:
            self.text: bytes | int = msgspec.json.encode([schema, keys], order="deterministic")
        except (TypeError, msgspec.EncodeError):  # not JSON: equal to itself only
            self.text = id(self)

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Schema) and self.text == other.text


@functools.lru_cache(maxsize=COMPILED_SCHEMAS)
def _compiled(key: _Schema) -> tuple[ReferenceCheck, msgspec.json.Decoder | None, Any]:
    """The reference check and the fast paths of a schema, compiled once per run."""
    return (
        ReferenceCheck(key.schema, key.stream),
        _msgspec_decoder(key.schema, key.keys),
        compile_fast(key.schema, key.keys),
    )


class RecordValidator(BaseJSONSchemaValidator):
    """Validates one stream's records; `check` takes raw JSON, `validate` a dict (SDK).

    Errors are the SDK's own exception types (InvalidRecord, MissingKeyPropertiesError),
    with messages that name the stream and what to do.
    """

    def __init__(self, schema: dict[str, Any], stream: str, key_properties: list[str]) -> None:
        super().__init__(schema)
        self._stream = stream
        self._keys = tuple(key_properties)
        self._reference, self._decoder, self._fast = _compiled(_Schema(schema, stream, self._keys))

    @property
    def fast_path(self) -> str:
        """Which check accepts a valid record: msgspec, fastjsonschema or jsonschema."""
        if self._decoder is not None:
            return "msgspec"
        return "jsonschema" if self._fast is None else "fastjsonschema"

    @property
    def raw_decoder(self) -> msgspec.json.Decoder | None:
        """The msgspec decoder that accepts only valid raw records, if the schema has one."""
        return self._decoder

    def check(self, raw: bytes) -> dict[str, Any] | None:
        """Validate raw record JSON; return the decoded dict when one had to be built."""
        if self._decoder is not None:
            try:
                self._decoder.decode(raw)
                return None
            except msgspec.ValidationError:
                pass  # stricter than JSON Schema in places: the full check decides
            except msgspec.DecodeError as exc:
                raise InputError(
                    f"a record of stream '{self._stream}' is not valid JSON ({exc}); "
                    "fix the tap's output"
                ) from None
        record = decode_record(raw, self._stream)
        self.validate(record)
        return record

    def validate(self, record: dict[str, Any]) -> None:
        """Validate a decoded record (the SDK's interface, used for mapped streams)."""
        if self._fast is not None:
            try:
                self._fast(record)
                return
            except (fastjsonschema.JsonSchemaValueException, ArithmeticError, TypeError):
                pass  # stricter than jsonschema in places: the reference decides
        detail = self._reference.error(record)
        if detail is not None:
            raise InvalidRecord(
                f"a record of stream '{self._stream}' does not match its SCHEMA: {detail}; "
                "fix the tap's output, or set validate_records to false",
                record,
            )
        for key in self._keys:
            if key not in record:
                raise MissingKeyPropertiesError(
                    f"a record of stream '{self._stream}' lacks key property '{key}'; "
                    "fix the tap's output or its key_properties"
                )
