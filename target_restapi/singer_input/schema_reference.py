"""The reference record check: the SDK's validator (jsonschema, Draft 2020-12), numbers exact.

This is what `singer_sdk.sinks.core.JSONSchemaValidator` runs: `Draft202012Validator` with a
format checker that checks no format, on a schema and records whose fractional numbers are
`Decimal`. Two deliberate differences, both where the SDK is wrong, never stricter than it:
an integral number written with a fraction or exponent (`1.0`, `1e2`) is an integer, as the
JSON Schema spec says (the SDK's Decimals fail jsonschema's float-only rule); and `multipleOf`
is decided exactly instead of raising `decimal.InvalidOperation` on large quotients.
The fast paths (validation.py, fast_schema.py) only ever accept; every rejection is decided here.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from target_restapi.sdk_seam import InvalidJSONSchema

DETAIL_CHARS = 300


def exact_numbers(value: Any) -> Any:
    """A schema with its floats as Decimals, as the SDK reads it (`parse_float=Decimal`)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: exact_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact_numbers(item) for item in value]
    return value


def _is_integer(_checker: Any, instance: Any) -> bool:
    """Integers, and numbers with a zero fraction however they are written."""
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    if isinstance(instance, float):
        return instance.is_integer()
    return (
        isinstance(instance, Decimal)
        and instance.is_finite()
        and instance == instance.to_integral_value()
    )


def _multiple_of(validator: Any, step: Any, instance: Any, _schema: Any) -> Any:
    """The `multipleOf` keyword, computed with fractions so no quotient overflows."""
    if not validator.is_type(instance, "number"):
        return
    try:
        failed = Fraction(instance) % Fraction(step) != 0
    except (ValueError, OverflowError, ZeroDivisionError):
        failed = True
    if failed:
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


_Reference = jsonschema.validators.extend(
    Draft202012Validator,
    validators={"multipleOf": _multiple_of},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
_NO_FORMATS = FormatChecker(formats=())


class ReferenceCheck:
    """One stream's schema compiled for jsonschema; refuses a schema the SDK refuses."""

    def __init__(self, schema: dict[str, Any], stream: str) -> None:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidJSONSchema(
                f"the SCHEMA of stream '{stream}' is not a valid JSON schema (Draft 2020-12): "
                f"{_shorten(exc.message)} at {exc.json_path}; fix the tap's SCHEMA message"
            ) from None
        self._validator = _Reference(exact_numbers(schema), format_checker=_NO_FORMATS)

    def error(self, record: Any) -> str | None:
        """Why the record does not match (the SDK's message and where), or None."""
        found = best_match(self._validator.iter_errors(record))
        if found is None:
            return None
        return f"{_shorten(found.message)} at {found.json_path}"


def _shorten(text: str) -> str:
    """A message short enough for one log line (jsonschema quotes whole values)."""
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."
