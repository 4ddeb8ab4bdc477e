"""Write Singer input for the benchmarks: N records of 9 fields, a STATE every 10,000."""

import argparse
import json
import random
import sys

SCHEMA = {
    "type": "SCHEMA",
    "stream": "events",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "amount": {"type": "number"},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "birthday": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            },
        },
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--pad", type=int, default=0, help="extra characters in `name`")
    args = parser.parse_args()
    rnd = random.Random(7)
    out = sys.stdout
    out.write(json.dumps(SCHEMA) + "\n")
    for i in range(1, args.records + 1):
        record = {
            "id": i,
            "name": f"user {i} " + "x" * args.pad,
            "email": None if i % 10 == 0 else f"user{i}@example.com",
            "amount": round(rnd.uniform(0, 10_000), 4),
            "active": i % 3 == 0,
            "created_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:04:05Z",
            "birthday": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
            "tags": ["a", "b"] if i % 2 else ["c"],
            "address": {"city": "Berlin", "zip": f"{10000 + i % 9999}"},
        }
        out.write(json.dumps({"type": "RECORD", "stream": "events", "record": record}) + "\n")
        if i % 10_000 == 0:
            state = {"bookmarks": {"events": {"replication_key_value": i}}}
            out.write(json.dumps({"type": "STATE", "value": state}) + "\n")


if __name__ == "__main__":
    main()
