"""Field mappings: send only chosen columns, under new names, checked against the SCHEMA.

Pure functions over plain data: no I/O, no Singer, no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from target_restapi.templates import MISSING, lookup, schema_node

FIELD_TYPES = ("string", "integer", "number", "boolean", "object", "array", "date-time", "date")


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Send the record's `column_name` (a name or dotted path) as `field_name`."""

    field_name: str
    column_name: str
    field_type: str | None = None

    @classmethod
    def parse(cls, entry: Mapping[str, Any]) -> FieldMapping:
        """Build a mapping from its setting; KeyError names a missing key."""
        return cls(
            field_name=str(entry["field_name"]),
            column_name=str(entry["column_name"]),
            field_type=entry.get("field_type"),
        )

    def problem(self, schema: Mapping[str, Any]) -> str | None:
        """What is wrong with this mapping for a stream's schema, if anything."""
        node = schema_node(schema, self.column_name)
        if node is None:
            return f"column '{self.column_name}' is not in the SCHEMA"
        if self.field_type is None or not _types_of(node):
            return None
        if not _matches(self.field_type, node):
            declared = "/".join(sorted(_types_of(node) - {"null"}))
            fmt = f" (format {node['format']})" if node.get("format") else ""
            return (
                f"column '{self.column_name}' is {declared}{fmt} in the SCHEMA, "
                f"not {self.field_type}"
            )
        return None


def _types_of(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def _matches(field_type: str, node: Mapping[str, Any]) -> bool:
    types = _types_of(node)
    if field_type in ("date-time", "date"):
        return "string" in types and node.get("format") == field_type
    if field_type == "number":
        return bool(types & {"number", "integer"})
    return field_type in types


def parse_mappings(entries: Sequence[Mapping[str, Any]]) -> tuple[FieldMapping, ...]:
    """Parse the `field_mappings` setting, refusing what cannot make a body field.

    A field name given twice would silently keep only the last column, an empty one
    makes a nameless field, and an empty column names nothing.
    """
    mappings = tuple(FieldMapping.parse(entry) for entry in entries)
    sources: dict[str, str] = {}
    for position, mapping in enumerate(mappings, start=1):
        if not mapping.field_name or not mapping.column_name:
            empty = "field_name" if not mapping.field_name else "column_name"
            raise ValueError(f"entry {position} has an empty {empty}; give it a name")
        if mapping.field_name in sources:
            raise ValueError(
                f"field_name '{mapping.field_name}' is given to both column "
                f"'{sources[mapping.field_name]}' and column '{mapping.column_name}'; "
                "give each mapping its own field_name"
            )
        sources[mapping.field_name] = mapping.column_name
        if mapping.field_type is not None and mapping.field_type not in FIELD_TYPES:
            raise ValueError(
                f"field_type {mapping.field_type!r} of column '{mapping.column_name}' "
                f"is not one of {', '.join(FIELD_TYPES)}"
            )
    return mappings


def mapping_problems(mappings: Sequence[FieldMapping], schema: Mapping[str, Any]) -> list[str]:
    """Every bad mapping for this schema, so the user can fix them all at once."""
    return [problem for m in mappings if (problem := m.problem(schema)) is not None]


def apply_mappings(mappings: Sequence[FieldMapping], record: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped record: only mapped columns, under their new names (missing → null)."""
    result: dict[str, Any] = {}
    for m in mappings:
        value = lookup(record, m.column_name)
        result[m.field_name] = None if value is MISSING else value
    return result
