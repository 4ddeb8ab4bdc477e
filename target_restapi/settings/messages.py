"""The settings schema's own check, each failure told as the setting, what is wrong, the fix.

The SDK logs one line per JSON Schema error plus a summary, quoting the value and not
saying what would do. Here every failure becomes a clause of one line; a value is shown
only when it cannot be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match

from target_restapi.output.redact import is_secret_header
from target_restapi.sdk_seam import DEFAULT_JSONSCHEMA_VALIDATOR, extend_validator_with_defaults
from target_restapi.settings.names import ABOUT

# The SDK's validator: it also fills declared defaults into the config, which the SDK's
# own check does and later code relies on.
_Validator = extend_validator_with_defaults(DEFAULT_JSONSCHEMA_VALIDATOR)

_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def schema_problems(config: dict[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """One clause per failure of the settings schema (defaults are filled in on the way)."""
    problems = [_describe(error) for error in _Validator(schema).iter_errors(config)]
    return list(dict.fromkeys(problems))  # one failure may be reported twice


def one_line(problems: list[str]) -> str:
    """Several problems in one line, numbered so that each clause stays readable."""
    if len(problems) == 1:
        return problems[0]
    numbered = " ".join(f"({n}) {problem}" for n, problem in enumerate(problems, 1))
    return f"{len(problems)} problems with the settings: {numbered}"


def setting_name(path: Iterable[Any]) -> str:
    """`streams.users.batch_size`, `field_mappings[0]`: how a place in the config is named."""
    name = ""
    for step in path:
        name += f"[{step}]" if isinstance(step, int) else f".{step}" if name else str(step)
    return name


def _describe(error: ValidationError) -> str:
    if error.context:  # anyOf / oneOf: the alternative that came closest says most
        return _describe(best_match(error.context))
    name = setting_name(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [n for n in required if n not in present]
        where = f"setting '{name}' lacks" if name else "the settings lack"
        return f"{where} {', '.join(repr(n) for n in missing)}, which is required; add it"
    shown = _shown(error)
    if error.validator in ("enum", "type", "const", *_BOUNDS):
        return f"setting '{name}' {shown}; use {_expected(_schema(error))}"
    return f"setting '{name}' {shown}, which is not allowed there; {ABOUT}"


def _shown(error: ValidationError) -> str:
    """`is 'bulk'`, `is 0`; for a value that may be a secret, only its kind."""
    value = error.instance
    if value is None:
        return "is null"
    if isinstance(value, Mapping | list) or not _public(error):
        return f"is {_type_name(value)}"
    if isinstance(value, str):
        return f"is {value[:40]!r}" + ("…" if len(value) > 40 else "")
    return f"is {_json(value)}"


def _public(error: ValidationError) -> bool:
    """Whether the value may be shown: not a secret by schema, nor a credential by name."""
    schema = _schema(error)
    secret = schema.get("secret") or schema.get("writeOnly")
    names = [str(step) for step in error.absolute_path]
    return not secret and not any(is_secret_header(n) for n in names) and "headers" not in names


def _schema(error: ValidationError) -> Mapping[str, Any]:
    """The failing schema; jsonschema types it loosely (a bool schema, or unset)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


def _expected(schema: Mapping[str, Any]) -> str:
    """What a setting's schema allows, in words: `one of single, batch, one`, `a number ≥ 1`."""
    if "enum" in schema:
        return "one of " + ", ".join(_json(v) for v in schema["enum"] if v is not None)
    if "const" in schema:
        return _json(schema["const"])
    types = schema.get("type") or []
    types = [types] if isinstance(types, str) else types
    kinds = " or ".join(_TYPES.get(t, t) for t in types if t != "null") or "a valid value"
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"{kinds} from {_json(low)} to {_json(high)}"
    if "exclusiveMinimum" in schema:
        return f"{kinds} above {_json(low)}"
    if low is not None:
        return f"{kinds} of at least {_json(low)}"
    if high is not None:
        return f"{kinds} of at most {_json(high)}"
    return kinds


def _type_name(value: Any) -> str:
    kinds = {bool: "a boolean", str: "text", int: "a number", float: "a number"}
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return kinds.get(type(value), type(value).__name__)


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)
