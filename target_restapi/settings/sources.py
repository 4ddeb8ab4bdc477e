"""Where settings come from: `--config` files and `TARGET_RESTAPI_*` variables, merged.

Replaces the SDK's loading, which replaces whole objects when it layers sources, reads a
`.env` file found by walking up from the installed SDK, turns a boolean it does not
recognise into false, and cannot read numbers. Here: files in order, then the process
environment, merged key by key at every depth; nulls mean "not set"; a file or variable
that cannot be read stops the run with one line naming it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from target_restapi.errors import SettingsError

ENV = "ENV"
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Null is a value inside these (a body constant, "drop this stream"), not "not set".
NULL_IS_DATA = frozenset({"static_fields", "stream_maps", "stream_map_config"})

ConfigInput = Mapping[str, Any] | str | PurePath | Iterable[str | PurePath] | None


@dataclass(frozen=True, slots=True)
class ConfigArgs:
    """What `--config` gave: file paths, and whether `ENV` was among them.

    Read later, in `invoke`, where an unreadable file becomes one line (the SDK's
    `Target.invoke` passes these two fields to the constructor).
    """

    config: list[str]
    parse_env: bool

    @classmethod
    def from_cli(cls, values: Iterable[str]) -> ConfigArgs:
        """Split the `--config` values into files and the `ENV` marker."""
        values = list(values)
        return cls([v for v in values if v != ENV], ENV in values)


def load(
    config: ConfigInput,
    schema: Mapping[str, Any],
    prefix: str,
    environ: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The settings: a dict or files in order, then `environ` when given, without nulls.

    Later sources win key by key; objects are merged at every depth, other values replace.
    """
    if isinstance(config, Mapping):
        layers = [dict(config)]
    elif isinstance(config, str | PurePath):
        layers = [read_file(config)]
    else:
        layers = [read_file(path) for path in config or ()]
    if environ is not None:
        layers.append(from_environment(schema, prefix, environ))
    result: dict[str, Any] = {}
    for layer in layers:
        result = deep_merge(result, without_nulls(layer))
    return result


def read_file(path: str | PurePath) -> dict[str, Any]:
    """A JSON object from a settings file; SettingsError naming the file otherwise."""
    where = f"--config file '{path}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{where} does not exist; check the path") from None
    except IsADirectoryError:
        raise SettingsError(f"{where} is a folder; give the settings file") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where} is not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as exc:
        raise SettingsError(f"{where} cannot be read: {exc.strerror}") from None
    if not text.strip():
        raise SettingsError(f"{where} is empty; it must hold a JSON object of settings")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:  # the message quotes no content: it may be secret
        raise SettingsError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise SettingsError(f"{where} holds a JSON {_kind(value)}, not an object of settings")
    return value


def from_environment(
    schema: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Top-level settings from `<prefix><SETTING>` variables, typed by the schema.

    Booleans take true/false, 1/0, yes/no, on/off (any case); integers and numbers take
    decimal text; objects and arrays take JSON. Anything else is refused, naming the
    variable; JSON errors quote no content (a variable may hold secrets).
    """
    result: dict[str, Any] = {}
    for name, node in (schema.get("properties") or {}).items():
        variable = prefix + name.upper().replace("-", "_")
        if variable in environ:
            result[name] = _parse(variable, environ[variable], _types(node))
    return result


def _types(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type", "string")
    types = {declared} if isinstance(declared, str) else set(declared)
    return types - {"null"}


def _parse(variable: str, text: str, types: set[str]) -> Any:
    if types == {"boolean"}:
        if text.lower() in TRUE or text.lower() in FALSE:
            return text.lower() in TRUE
        raise SettingsError(
            f"environment variable {variable} is {text!r}, not a boolean; use one of "
            f"{', '.join(TRUE)} or {', '.join(FALSE)} (any case, no spaces)"
        )
    if types == {"integer"}:
        if INTEGER.fullmatch(text):
            return int(text)
        raise SettingsError(
            f"environment variable {variable} is {text!r}, not an integer; give whole "
            "decimal digits such as 5"
        )
    if types <= {"integer", "number"} and types:
        if INTEGER.fullmatch(text):
            return int(text)
        if NUMBER.fullmatch(text) and math.isfinite(float(text)):
            return float(text)
        raise SettingsError(
            f"environment variable {variable} is {text!r}, not a number; give decimal "
            "text such as 5 or 0.25"
        )
    if types & {"object", "array"} and not types & {"string"}:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"environment variable {variable} is not valid JSON: {exc.msg} at "
                f"column {exc.colno}"
            ) from None
        if _kind(value) not in types:
            raise SettingsError(
                f"environment variable {variable} holds a JSON {_kind(value)}; give a JSON "
                f"{' or '.join(sorted(types))}"
            )
        return value
    return text


def _kind(value: Any) -> str:
    """The JSON-schema type name of a parsed JSON value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: objects merge key by key at every depth, anything else replaces."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def without_nulls(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with every null removed: null means "not set".

    At every depth (top level, `streams` entries, `headers`, `ssh_tunnel`, list entries),
    except inside the `NULL_IS_DATA` settings, where null is meaningful.
    """
    result: dict[str, Any] = {}
    for key, value in settings.items():
        if value is None:
            continue
        if key in NULL_IS_DATA:
            result[key] = value
        elif key == "streams" and isinstance(value, Mapping):
            result[key] = {
                name: without_nulls(entry) if isinstance(entry, Mapping) else entry
                for name, entry in value.items()
                if entry is not None
            }
        else:
            result[key] = _strip_nulls(value)
    return result


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(item) for item in value]
    return value
