"""Per-record cost of RecordValidator.check on raw record JSON, one schema at a time.

Times 200,000 records (best of 3) for: the common simple schema (msgspec path), the same
records writing an integer as `7.0` (msgspec refuses, the reference decides), and a richer
schema with bounds, patterns and anyOf (fastjsonschema path). Prints microseconds a record.
"""

from __future__ import annotations

import json
import time

from target_restapi.singer_input.validation import RecordValidator

COUNT = 200_000
SIMPLE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "score": {"type": ["number", "null"]},
        "active": {"type": "boolean"},
        "updated_at": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    "required": ["id"],
}
RICH = {
    **SIMPLE,
    "properties": {
        **SIMPLE["properties"],
        "id": {"type": "integer", "minimum": 0},
        "name": {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}]},
        "score": {"type": "number", "exclusiveMaximum": 100.5},
        "code": {"type": "string", "pattern": "^[A-Z]{2}\\d+$"},
    },
}


def records(integer_text: str) -> list[bytes]:
    """Distinct records, each as a tap writes it."""
    return [
        (
            f'{{"id": {i}{integer_text}, "name": "user {i}", "score": {i % 97}.25, '
            f'"active": true, "updated_at": "2026-11-28T10:00:00Z", "tags": ["a", "b"], '
            f'"address": {{"city": "Lyon"}}, "code": "FR{i}"}}'
        ).encode()
        for i in range(COUNT)
    ]


def per_record_us(schema: dict, raws: list[bytes]) -> float:
    """Best of three runs, in microseconds a record."""
    check = RecordValidator(json.loads(json.dumps(schema)), "bench", ["id"]).check
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for raw in raws:
            check(raw)
        best = min(best, time.perf_counter() - start)
    return best / len(raws) * 1e6


def main() -> None:
    plain, fractional = records(""), records(".0")
    print(f"simple schema (msgspec path):       {per_record_us(SIMPLE, plain):6.2f} us/record")
    print(f"simple schema, integers as `7.0`:   {per_record_us(SIMPLE, fractional):6.2f} us/record")
    print(f"rich schema (fastjsonschema path):  {per_record_us(RICH, plain):6.2f} us/record")


if __name__ == "__main__":
    main()
