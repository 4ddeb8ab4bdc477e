"""Floor for batch mode: orjson in, POST orjson.dumps(batch) over one keep-alive session.

Validates nothing and shapes nothing: the least any target must do.
"""

import sys

import orjson
import requests


def main() -> None:
    url, size = sys.argv[1], int(sys.argv[2])
    session = requests.Session()
    batch = []
    for line in sys.stdin.buffer:
        message = orjson.loads(line)
        if message["type"] == "RECORD":
            batch.append(message["record"])
            if len(batch) >= size:
                session.post(
                    url, data=orjson.dumps(batch), headers={"Content-Type": "application/json"}
                ).raise_for_status()
                batch = []
    if batch:
        session.post(
            url, data=orjson.dumps(batch), headers={"Content-Type": "application/json"}
        ).raise_for_status()


if __name__ == "__main__":
    main()
