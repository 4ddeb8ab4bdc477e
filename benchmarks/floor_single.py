"""Floor for single mode: N threads, each with its own keep-alive session, one POST a record."""

import queue
import sys
import threading

import orjson
import requests


def main() -> None:
    url, threads = sys.argv[1], int(sys.argv[2])
    work: queue.Queue = queue.Queue(maxsize=threads * 4)

    def worker() -> None:
        session = requests.Session()
        while (item := work.get()) is not None:
            record_id, body = item
            session.post(
                f"{url}/{record_id}", data=body, headers={"Content-Type": "application/json"}
            ).raise_for_status()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for line in sys.stdin.buffer:
        message = orjson.loads(line)
        if message["type"] == "RECORD":
            work.put((message["record"]["id"], orjson.dumps(message["record"])))
    for _ in pool:
        work.put(None)
    for thread in pool:
        thread.join()


if __name__ == "__main__":
    main()
