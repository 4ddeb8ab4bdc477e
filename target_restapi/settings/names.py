"""Setting names the target does not know, and `streams` entries no stream used.

A misspelt name would otherwise be ignored without a word and its default used in its
place. The known names come from the final settings schema (the target's own settings and
the SDK's built-ins, as `--about` shows them), so a setting added later is known at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from target_restapi.sdk_seam import capabilities

ABOUT = "see the settings with `target-restapi --about`"


def unknown_settings(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """One problem per name that the schema does not declare, at the top level or in `streams`.

    Other objects (headers, static_fields, stream_maps, ssh_tunnel) are left to the schema.
    """
    top_level = schema.get("properties") or {}
    unused = sdk_settings()  # accepted, and warned about by `unused_sdk_settings`
    problems = [
        _unknown_name(str(n), "", top_level, top_level)
        for n in config
        if n not in top_level and n not in unused
    ]
    entry = (top_level.get("streams") or {}).get("additionalProperties")
    per_stream = (entry.get("properties") or {}) if isinstance(entry, Mapping) else {}
    streams = config.get("streams")
    for stream, values in streams.items() if isinstance(streams, Mapping) else ():
        if isinstance(values, Mapping):
            where = f"streams.{stream}"
            problems += [
                _unknown_name(str(n), where, per_stream, top_level)
                for n in values
                if n not in per_stream
            ]
    return problems


@functools.cache
def sdk_settings() -> frozenset[str]:
    """Every setting the SDK may add to a plugin's schema, read from its capability schemas."""
    return frozenset(
        name
        for attribute, value in vars(capabilities).items()
        if attribute.endswith("_CONFIG") and isinstance(value, dict)
        for name in value.get("properties") or {}
    )


def unused_sdk_settings(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """SDK settings this target does not offer (load_method, batch_config, ...): ignored.

    Accepted, since an SDK-wide config may carry them, but said, since they do nothing.
    """
    known = schema.get("properties") or {}
    return [
        f"'{name}' is an SDK setting this target does not use, so it is ignored; {ABOUT}"
        for name in config
        if name in sdk_settings() and name not in known
    ]


def _unknown_name(name: str, where: str, known: Iterable[str], top_level: Iterable[str]) -> str:
    shown = f"{where}.{name}" if where else name
    if where and name in top_level:
        return f"'{shown}' is a top-level setting only; move '{name}' out of '{where}'"
    guess = closest(name, known)
    hint = f"did you mean '{guess}'?" if guess else ABOUT
    return f"'{shown}' is not a setting; {hint}"


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (case and `-` for `_` forgiven), if any is close."""
    import difflib  # only a misspelt name needs it: imported then, not at start-up

    spelled = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.lower().replace("-", "_"), spelled, n=1, cutoff=0.6)
    return spelled[found[0]] if found else None


def unused_stream_entries(config: Mapping[str, Any], arrived: Iterable[str]) -> list[str]:
    """One warning per `streams` entry whose stream never arrived: likely a misspelt name."""
    names = sorted(arrived)
    lines = []
    for entry in config.get("streams") or {}:
        if entry in names:
            continue
        guess = closest(entry, names)
        if guess:
            hint = f"did you mean '{guess}'?"
        elif names:
            hint = "streams that arrived: " + ", ".join(f"'{s}'" for s in names[:10])
        else:
            hint = "no stream arrived"
        lines.append(
            f"setting 'streams.{entry}' was not used: no stream '{entry}' arrived in this "
            f"run; {hint}"
        )
    return lines
