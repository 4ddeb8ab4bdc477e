"""fastjsonschema, used only where it accepts nothing that jsonschema refuses.

fastjsonschema compiles a schema to Python code, several times faster than jsonschema,
but its semantics differ. Where it is stricter (its `$` does not match before a final
newline, its `%` on a huge Decimal raises), a refusal just hands the record to the
reference check (schema_reference.py), so only leniency matters:
- schemas with a keyword it reads more leniently than Draft 2020-12 are not compiled;
- float bounds and steps (`maximum: 0.1`) are written into its code as exact Decimals, as
  the SDK reads them, instead of float literals that `0.1` as read would pass, and its
  `multipleOf` division raises instead of rounding;
- an integral Decimal (`7.0` as read) is an integer, as JSON Schema says.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastjsonschema

# Keywords it reads more leniently: unknown to its default draft (2019-09) or different
# there, or (oneOf, not, if) turning one of its stricter inner checks into a more lenient
# outer one. `enum`/`const` are vetted value by value (`_plain`).
LENIENT = {
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "prefixItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "propertyNames",
    "oneOf",
    "not",
    "if",
}
NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Its `multipleOf` divides Decimals in the current context: any rounding must raise, so
# that a quotient rounded to an integer is never taken for an exact one.
_EXACT_DIVISION = decimal.Context(traps=[decimal.Inexact, decimal.InvalidOperation])


class _Exact(Decimal):
    """A schema number that fastjsonschema writes into its code as an exact Decimal."""

    def __format__(self, spec: str, context: decimal.Context | None = None, /) -> str:
        return f"Decimal('{Decimal.__str__(self)}')"


class _IntegerType(type):
    """Makes `isinstance(value, _Integer)` true for integers written either way."""

    def __instancecheck__(cls, value: Any) -> bool:
        if isinstance(value, int):
            return True
        return (
            isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()
        )


class _Integer(metaclass=_IntegerType):
    """`int` to the generated code: converts as `int`; its `integer` check admits `7.0`."""

    # Returns an int, not an _Integer, as the generated code's `int(...)` must.
    def __new__(cls, value: Any) -> int:  # type: ignore[misc]
        return int(value)


def _plain(value: Any) -> bool:
    """A literal it compares as jsonschema does: null, a string, an integer.

    Its `==` lets `true` match `1.0` and `[1]` match `[true]`; jsonschema's does not.
    """
    return value is None or isinstance(value, str) or type(value) is int


def _subschemas(schema: dict[str, Any]) -> list[Any]:
    """The subschemas of the keywords a vetted schema may hold."""
    found = [schema[word] for word in ("items", "additionalProperties") if word in schema]
    found += list((schema.get("properties") or {}).values())
    return [*found, *schema.get("anyOf", ()), *schema.get("allOf", ())]


def _vetted(schema: Any) -> bool:
    """Whether it accepts only what jsonschema accepts for this schema."""
    if not isinstance(schema, dict):
        return True
    if LENIENT & set(schema):
        return False
    literals = [*schema.get("enum", ()), *([schema["const"]] if "const" in schema else ())]
    if not all(_plain(value) for value in literals):
        return False
    return all(_vetted(sub) for sub in _subschemas(schema))


def _exact(schema: Any, keys: tuple[str, ...] = ()) -> Any:
    """A vetted schema as it should see it: exact bounds, keys required, default draft."""
    if not isinstance(schema, dict):
        return schema
    fast = {word: value for word, value in schema.items() if word != "$schema"}
    for word in NUMBERS:
        if isinstance(fast.get(word), float):
            fast[word] = _Exact(repr(fast[word]))
    for word in ("items", "additionalProperties"):
        if word in fast:
            fast[word] = _exact(fast[word])
    if isinstance(fast.get("properties"), dict):
        fast["properties"] = {name: _exact(sub) for name, sub in fast["properties"].items()}
    for word in ("anyOf", "allOf"):
        if word in fast:
            fast[word] = [_exact(sub) for sub in fast[word]]
    required = [
        *fast.get("required", ()),
        *(key for key in keys if key not in fast.get("required", ())),
    ]
    if required:
        fast["required"] = required
    return fast


def compile_fast(schema: dict[str, Any], keys: tuple[str, ...]) -> Callable[[Any], Any] | None:
    """A check that raises on records jsonschema may refuse, or None for this schema."""
    if not _vetted(schema):
        return None
    try:
        code = fastjsonschema.compile_to_code(
            _exact(schema, keys), use_default=False, use_formats=False
        )
    except (fastjsonschema.JsonSchemaDefinitionException, re.error, ValueError, TypeError):
        return None  # e.g. `[$]`, which its rewrite of `$` breaks: the reference copes
    namespace: dict[str, Any] = {"int": _Integer}
    exec(code, namespace)  # as fastjsonschema.compile does, with `int` widened
    check: Callable[[Any], Any] = namespace["validate"]
    if "multipleOf" not in code:
        return check

    def check_exactly(record: Any) -> Any:
        with decimal.localcontext(_EXACT_DIVISION):
            return check(record)

    return check_exactly
