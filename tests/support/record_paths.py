"""Singer input built in code, and the run summary read back, for the record-path tests."""

from __future__ import annotations

import json
from typing import Any

COUNTED = ("delivered", "failed", "interrupted", "not_sent")
PROPS = {"id": {"type": "integer"}, "name": {"type": "string"}}


def schema(stream: str = "users", properties: dict | None = None) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties or PROPS},
        "key_properties": ["id"],
    }


def record(i: int, stream: str = "users", **extra: Any) -> dict:
    return {"type": "RECORD", "stream": stream, "record": {"id": i, "name": f"n{i}", **extra}}


def state(value: Any) -> dict:
    return {"type": "STATE", "value": {"at": value}}


def lines(*messages: dict | str) -> str:
    """Singer text: dicts as JSON lines, strings as they are (for bad lines)."""
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def summaries(stderr: str) -> list[dict]:
    """Every JSON summary line the run logged."""
    return [
        json.loads(line[line.index('{"summary"') :])["summary"]
        for line in stderr.splitlines()
        if '{"summary"' in line
    ]


def the_summary(stderr: str) -> dict:
    """The run's one summary, checked to add up per stream and in total."""
    found = summaries(stderr)
    assert len(found) == 1, f"expected one summary, got {len(found)}:\n{stderr}"
    summary = found[0]
    for counts in [*summary["streams"].values(), summary["total"]]:
        assert counts["received"] == sum(counts[name] for name in COUNTED), summary
    return summary


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
