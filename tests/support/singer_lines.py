"""Singer input written by the tests themselves: a `users` stream whose records carry a token."""

from __future__ import annotations

import base64
import json

SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "token": {"type": "string"}},
    },
    "key_properties": ["id"],
}


def singer(*records: dict) -> str:
    lines = [SCHEMA] + [{"type": "RECORD", "stream": "users", "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {"users": {"done": True}}}})
    return "\n".join(json.dumps(line) for line in lines) + "\n"


USERS = singer(*({"id": str(i), "token": f"t{i}"} for i in range(1, 4)))  # ids "1".."3"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# A `users` stream of integer ids, one message a line (JSON text without the newline).
ID_SCHEMA = json.dumps(
    {
        "type": "SCHEMA",
        "stream": "users",
        "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "key_properties": ["id"],
    }
)


def id_record(i: int) -> str:
    return json.dumps({"type": "RECORD", "stream": "users", "record": {"id": i}})


def id_state(i: int) -> str:
    return json.dumps({"type": "STATE", "value": {"bookmarks": {"users": {"id": i}}}})
