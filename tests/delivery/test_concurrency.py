"""max_concurrency: requests in flight at once, per-URL order, and STATE under concurrency.

The server is a stdlib ThreadingHTTPServer on a loopback port: it answers each
connection on its own thread, sleeps (or waits for the test) before answering, and
counts the requests being handled at once, overall and per path. Counts drop before
the answer is written, so a client that sends its next request only after an answer
never looks like an overlap. Only behaviour is asserted, never speed.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.run import NO_RETRY, RUN_TIMEOUT, TARGET, clean_env, run_target, write_config

TIMEOUT = 30  # guard against a hang, never an assertion about speed
QUIET = 0.5  # how long "no STATE appears" is watched for


@dataclass
class Arrival:
    """One request as the server handled it; times are time.monotonic()."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    started: float
    answered: float = 0.0
    status: int = 0

    def json(self):
        return json.loads(self.body)


class SlowServer:
    """Threaded loopback server: per-request delay, gates, status; counts concurrency."""

    def __init__(self) -> None:
        self.delay: Callable[[str, bytes], float] = lambda path, body: 0.0
        self.status: Callable[[str, bytes], int] = lambda path, body: 200
        self.gates: dict[str, threading.Event] = {}  # path -> held until set
        self.cond = threading.Condition()
        self.arrivals: list[Arrival] = []
        self.in_flight = 0
        self.peak = 0
        self.in_flight_by_path: Counter[str] = Counter()
        self.peak_by_path: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real API would

            def log_message(self, *args) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = server.handle(self.command, self.path, body, dict(self.headers))
                answer = b"ok" if status < 300 else b"failed on purpose"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def handle(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        arrival = Arrival(method, path, body, headers, time.monotonic())
        with self.cond:
            self.arrivals.append(arrival)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.in_flight_by_path[path] += 1
            self.peak_by_path[path] = max(self.peak_by_path[path], self.in_flight_by_path[path])
            self.cond.notify_all()
        try:
            gate = self.gates.get(path)
            if gate is not None:
                gate.wait(TIMEOUT)
            pause = self.delay(path, body)
            if pause:
                time.sleep(pause)
            arrival.status = self.status(path, body)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.in_flight_by_path[path] -= 1
                arrival.answered = time.monotonic()  # before the answer is written
                self.cond.notify_all()
        return arrival.status

    def wait_until(self, predicate: Callable[[], bool], what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, TIMEOUT), f"timed out waiting for {what}"

    def answered_paths(self) -> set[str]:
        with self.cond:
            return {a.path for a in self.arrivals if a.answered}

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = SlowServer()
    yield s
    s.close()


# Singer input


def schema_line(stream: str = "items") -> str:
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "thing": {"type": "string"},
                    "version": {"type": "integer"},
                },
            },
            "key_properties": ["id"],
        }
    )


def record_line(record: dict, stream: str = "items") -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": record})


def state_line(i: int) -> str:
    return json.dumps({"type": "STATE", "value": {"bookmarks": {"items": {"id": i}}}})


def bookmark_of(line: str) -> int:
    return json.loads(line)["bookmarks"]["items"]["id"]


def items_input(n: int, *, states: bool = False) -> str:
    lines = [schema_line()]
    for i in range(1, n + 1):
        lines.append(record_line({"id": i}))
        if states:
            lines.append(state_line(i))
    return "\n".join(lines) + "\n"


def path_id(path: str) -> int:
    return int(path.rsplit("/", 1)[1])


# 1. max_concurrency: up to N requests in flight; 1 keeps input order


def test_max_concurrency_n_puts_several_requests_in_flight_but_never_more_than_n(server, tmp_path):
    server.delay = lambda path, body: 0.15
    config = {"url": server.url("/items/#{id}"), "max_concurrency": 4}
    result = run_target(config, items_input(16, states=True), tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(path_id(a.path) for a in server.arrivals) == list(range(1, 17))
    assert all(a.json() == {"id": path_id(a.path)} for a in server.arrivals)
    assert 1 < server.peak <= 4, f"{server.peak} requests were in flight at once"
    assert result.states[-1] == {"bookmarks": {"items": {"id": 16}}}


def test_max_concurrency_per_stream_override_applies_to_that_stream(server, tmp_path):
    server.delay = lambda path, body: 0.15
    config = {
        "url": server.url("/items/#{id}"),
        "streams": {"items": {"max_concurrency": 3}},
    }
    result = run_target(config, items_input(12), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(server.arrivals) == 12
    assert 1 < server.peak <= 3, f"{server.peak} requests were in flight at once"


def test_default_concurrency_sends_one_request_at_a_time_in_input_order(server, tmp_path):
    server.delay = lambda path, body: 0.1
    config = {"url": server.url("/items/#{id}")}
    result = run_target(config, items_input(8, states=True), tmp_path)

    assert result.returncode == 0, result.stderr
    assert server.peak == 1
    assert [path_id(a.path) for a in server.arrivals] == list(range(1, 9))
    assert [bookmark_of(json.dumps(s)) for s in result.states] == list(range(1, 9))


def test_max_concurrency_one_is_the_same_as_the_default(server, tmp_path):
    server.delay = lambda path, body: 0.05
    config = {"url": server.url("/items/#{id}"), "max_concurrency": 1}
    result = run_target(config, items_input(6), tmp_path)

    assert result.returncode == 0, result.stderr
    assert server.peak == 1
    assert [path_id(a.path) for a in server.arrivals] == list(range(1, 7))


# 2. The same rendered URL: never two in flight, updates in input order


def alternating_updates(n: int) -> str:
    """Records alternating between things a and b, each update of a thing numbered."""
    lines = [schema_line()]
    for i in range(n):
        lines.append(record_line({"id": i, "thing": "ab"[i % 2], "version": i // 2}))
    return "\n".join(lines) + "\n"


def test_requests_to_the_same_url_never_overlap_and_keep_input_order(server, tmp_path):
    # The first update of /things/a is answered late: a later update of a must wait for it.
    def delay(path, body):
        return 0.5 if json.loads(body)["id"] == 0 else 0.1

    server.delay = delay
    config = {"url": server.url("/things/#{thing}"), "method": "PUT", "max_concurrency": 8}
    result = run_target(config, alternating_updates(12), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(server.arrivals) == 12
    assert dict(server.peak_by_path) == {"/things/a": 1, "/things/b": 1}
    for thing in "ab":
        versions = [a.json()["version"] for a in server.arrivals if a.path == f"/things/{thing}"]
        assert versions == list(range(6)), f"updates of {thing} arrived as {versions}"
    # Different URLs did go out together: the limit is per URL, not global.
    assert server.peak == 2


def test_batches_to_the_same_url_never_overlap_and_keep_input_order(server, tmp_path):
    server.delay = lambda path, body: 0.5 if json.loads(body)[0]["id"] == 0 else 0.1
    config = {
        "url": server.url("/things/#{thing}"),
        "request_mode": "batch",
        "batch_size": 2,
        "max_concurrency": 8,
    }
    result = run_target(config, alternating_updates(16), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(server.arrivals) == 8
    assert dict(server.peak_by_path) == {"/things/a": 1, "/things/b": 1}
    for thing in "ab":
        versions = [
            r["version"] for a in server.arrivals if a.path == f"/things/{thing}" for r in a.json()
        ]
        assert versions == list(range(8)), f"updates of {thing} arrived as {versions}"
    assert server.peak == 2


# 3. STATE under concurrency: only once every earlier record is delivered


def test_state_waits_for_a_slow_earlier_record_while_later_records_are_delivered(
    server, live_target
):
    held = threading.Event()
    server.gates["/items/3"] = held
    target = live_target({"url": server.url("/items/#{id}"), "max_concurrency": 4})
    target.send(*items_input(10, states=True).splitlines())

    # Everything but record 3 gets answered while 3 is held.
    others = {f"/items/{i}" for i in range(1, 11) if i != 3}
    server.wait_until(lambda: others <= server.answered_paths(), "records other than 3")
    # STATE for records 1 and 2 is not held back by the slow record 3.
    assert bookmark_of(target.next_line()) <= 2
    while bookmark_of(target.lines[-1]) < 2:
        assert bookmark_of(target.next_line()) <= 2
    time.sleep(QUIET)  # room for a wrongly released STATE to show up
    before_release = list(target.lines)
    assert [bookmark_of(line) for line in before_release if bookmark_of(line) > 2] == [], (
        f"STATE passed record 3 before it was delivered: {before_release}"
    )

    held.set()
    assert target.finish() == 0, target.stderr
    after = target.lines[len(before_release) :]
    assert after, "no STATE after the slow record was delivered"
    assert bookmark_of(after[-1]) == 10
    assert all(bookmark_of(line) > 2 for line in after)


def read_lines_with_times(proc: subprocess.Popen, out: list[tuple[float, str]]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        out.append((time.monotonic(), raw.decode().rstrip("\n")))


def test_every_state_comes_after_all_earlier_records_were_answered(server, tmp_path):
    # Uneven answer times make later records finish before earlier ones.
    server.delay = lambda path, body: 0.05 * ((path_id(path) * 7) % 5)
    config = {"url": server.url("/items/#{id}"), "max_concurrency": 6}
    cfg_path = write_config(config, tmp_path)
    proc = subprocess.Popen(
        [*TARGET, "--config", str(cfg_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=read_lines_with_times, args=(proc, lines), daemon=True)
    reader.start()
    # Only the reader thread reads stdout: communicate() would race it for the STATE lines.
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(items_input(30, states=True).encode())
    proc.stdin.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=RUN_TIMEOUT)
    reader.join(TIMEOUT)
    proc.stdout.close()  # read to its end by the reader; left open, it is a leaked file
    proc.stderr.close()

    assert proc.returncode == 0, stderr.decode()
    answered = {path_id(a.path): a.answered for a in server.arrivals}
    assert sorted(answered) == list(range(1, 31))
    # Some later record was answered before an earlier one: the check below means something.
    assert any(answered[i + 1] < answered[i] for i in range(1, 30))
    bookmarks = [bookmark_of(line) for _, line in lines]
    assert bookmarks == sorted(bookmarks)
    assert bookmarks[-1] == 30
    for printed_at, line in lines:
        covered = bookmark_of(line)
        late = [i for i in range(1, covered + 1) if answered[i] >= printed_at]
        assert late == [], f"STATE {covered} was printed before records {late} were answered"


def test_a_failure_under_concurrency_emits_no_state_past_it_and_stops(server, tmp_path):
    server.status = lambda path, body: 500 if path == "/items/3" else 200
    server.delay = lambda path, body: 0 if path == "/items/3" else 0.2
    config = {
        "url": server.url("/items/#{id}"),
        "max_concurrency": 4,
        "fail_on_error": True,
        **NO_RETRY,
    }
    result = run_target(config, items_input(40, states=True), tmp_path)

    assert result.returncode != 0
    assert "500" in result.stderr
    assert "/items/3" in result.stderr
    printed = [bookmark_of(json.dumps(s)) for s in result.states]
    assert [b for b in printed if b >= 3] == [], f"STATE passed the failed record: {printed}"
    # The run stopped sending: far from every record went out after the failure.
    assert len(server.arrivals) < 40


def test_a_failure_with_fail_on_error_false_lets_state_pass_under_concurrency(server, tmp_path):
    server.status = lambda path, body: 500 if path == "/items/3" else 200
    server.delay = lambda path, body: 0.05
    config = {
        "url": server.url("/items/#{id}"),
        "max_concurrency": 4,
        "fail_on_error": False,
        **NO_RETRY,
    }
    result = run_target(config, items_input(12, states=True), tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(path_id(a.path) for a in server.arrivals) == list(range(1, 13))
    assert result.states[-1] == {"bookmarks": {"items": {"id": 12}}}
    assert "/items/3" in result.stderr
