"""Retries: which failures are retried, how often, how long between attempts, timeouts.

Every server here is real and on loopback; backoff is kept tiny through
`max_backoff_seconds` so each test takes at most a few seconds.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from email.utils import formatdate

import pytest
from pytest_httpserver import HTTPServer
from support.run import Recorder, data_file, run_target
from werkzeug import Response

USERS = data_file("delivery_users.singer")  # ids 1..5, a STATE after each record
ONE_USER = "\n".join(USERS.read_text().splitlines()[:3]) + "\n"  # SCHEMA, id 1, its STATE
FAST = {"max_backoff_seconds": 0.05}  # full-jitter waits of at most 50 ms
DEFAULT_RETRIED = (408, 429, 500, 502, 503, 504)


def answers(*first, body="busy, try again"):
    """Answer the first requests with `first` (a status, or (status, headers)), then 200."""
    queue = list(first)

    def respond(seen):
        if not queue:
            return None
        status, headers = queue.pop(0) if isinstance(queue[0], tuple) else (queue.pop(0), {})
        return Response(f"{body} ({status})", status=status, headers=headers)

    return respond


def always(status, body="busy, try again"):
    return lambda seen: Response(f"{body} ({status})", status=status)


def ids(recorder):
    return [seen.json()["id"] for seen in recorder.requests]


def error_line(stderr, marker):
    lines = [line for line in stderr.splitlines() if marker in line]
    assert len(lines) == 1, f"expected one line with {marker!r}:\n{stderr}"
    return lines[0]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


# Statuses


def test_server_errors_then_success_delivers_after_retries(recorder, httpserver, tmp_path):
    recorder.respond = answers(503, 503)
    config = {"url": httpserver.url_for("/users"), **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1, 1]
    assert len({seen.body for seen in recorder.requests}) == 1, "a retry resends the same body"
    assert result.states == [{"bookmarks": {"users": {"id": 1}}}]


@pytest.mark.parametrize("status", DEFAULT_RETRIED)
def test_each_default_status_is_retried(recorder, httpserver, tmp_path, status):
    recorder.respond = answers(status)
    config = {"url": httpserver.url_for("/users"), **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1]


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_never_retried(recorder, httpserver, tmp_path, status):
    recorder.respond = always(status, body="you sent nonsense")
    config = {"url": httpserver.url_for("/users"), **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1], "one attempt, and the run stops"
    line = error_line(result.stderr, "you sent nonsense")
    assert str(status) in line
    assert "attempts" not in line


def test_retry_on_status_replaces_the_default_list(recorder, httpserver, tmp_path):
    recorder.respond = answers(418, 418)
    config = {"url": httpserver.url_for("/users"), "retry_on_status": [418], **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1, 1]


def test_retry_on_status_drops_the_default_statuses(recorder, httpserver, tmp_path):
    recorder.respond = answers(503)  # would succeed on the second attempt, if there were one
    config = {"url": httpserver.url_for("/users"), "retry_on_status": [418], **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1]
    assert "503" in error_line(result.stderr, "busy, try again")


def test_max_retries_bounds_the_attempts(recorder, httpserver, tmp_path):
    recorder.respond = always(503)
    config = {"url": httpserver.url_for("/users"), "max_retries": 2, **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1, 1, 1]
    line = error_line(result.stderr, "busy, try again")
    assert re.search(r"\b3 attempts\b", line), line
    assert "503" in line
    assert result.states == []


def test_max_retries_zero_makes_one_attempt(recorder, httpserver, tmp_path):
    recorder.respond = always(503)
    config = {"url": httpserver.url_for("/users"), "max_retries": 0, **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1]


def test_default_max_retries_is_five(recorder, httpserver, tmp_path):
    recorder.respond = always(500)
    config = {"url": httpserver.url_for("/users"), **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1] * 6
    assert re.search(r"\b6 attempts\b", error_line(result.stderr, "busy, try again"))


@pytest.mark.parametrize(
    ("settings", "first_body"),
    [
        ({"request_mode": "batch", "batch_size": 4}, [1, 2, 3, 4]),  # a full batch
        ({"request_mode": "one"}, [1, 2, 3, 4, 5]),
    ],
    ids=["batch", "one"],
)
def test_a_retried_batch_is_resent_whole(recorder, httpserver, tmp_path, settings, first_body):
    recorder.respond = answers(502, 500)
    config = {"url": httpserver.url_for("/users"), **settings, **FAST}
    result = run_target(config, data_file("delivery_users_batched.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    first, second, third = recorder.requests[:3]
    assert first.body == second.body == third.body
    assert [r["id"] for r in third.json()] == first_body
    delivered = [r["id"] for seen in recorder.requests[2:] for r in seen.json()]
    assert delivered == [1, 2, 3, 4, 5]


# Connection errors


class DroppingServer:
    """Raw HTTP on loopback: reads each request whole, then closes the first `drops`
    connections after sending `cut_answer` (nothing by default), and answers 200 to the
    others."""

    def __init__(self, drops: int, cut_answer: bytes = b"") -> None:
        self.drops = drops
        self.cut_answer = cut_answer
        self.bodies: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                try:
                    body = self._read_request(conn)
                except OSError:
                    continue
                self.bodies.append(body)
                if len(self.bodies) > self.drops:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                elif self.cut_answer:
                    conn.sendall(self.cut_answer)

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("closed before the headers ended")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(match.group(1)) if match else 0
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("closed before the body ended")
            body += chunk
        return body

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def dropping_server():
    servers: list[DroppingServer] = []

    def start(drops: int, cut_answer: bytes = b"") -> DroppingServer:
        server = DroppingServer(drops, cut_answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_dropped_connection_is_retried(dropping_server, tmp_path):
    server = dropping_server(drops=2)
    config = {"url": server.url("/users"), **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(server.bodies) == 3
    assert len(set(server.bodies)) == 1
    assert result.states == [{"bookmarks": {"users": {"id": 1}}}]


@pytest.mark.parametrize(
    "cut_answer",
    [
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nbusy",
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
    ],
    ids=["503-length", "503-chunked", "200-length"],
)
def test_connection_dropped_in_the_middle_of_the_answer_is_retried(
    dropping_server, tmp_path, cut_answer
):
    """The answer starts, then the connection breaks: a connection error like any other."""
    server = dropping_server(drops=1, cut_answer=cut_answer)
    config = {"url": server.url("/users"), **FAST}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(server.bodies) == 2
    assert result.states == [{"bookmarks": {"users": {"id": 1}}}]


def test_connection_dropped_every_time_fails_after_the_retries(dropping_server, tmp_path):
    server = dropping_server(drops=1000)
    config = {"url": server.url("/users"), "max_retries": 2, **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    assert len(server.bodies) == 3
    line = error_line(result.stderr, "could not be sent")
    assert "'users'" in line
    assert re.search(r"\b3 attempts\b", line), line
    assert result.states == []


def test_refused_port_fails_after_the_retries_with_a_clear_message(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/users"
    config = {"url": url, "max_retries": 3, **FAST}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    line = error_line(result.stderr, "could not be sent")
    assert "'users'" in line
    assert f"POST {url}" in line
    assert re.search(r"\b4 attempts\b", line), line
    assert "Traceback" not in result.stderr
    assert result.states == []


# Retry-After


def gap(recorder):
    first, second = recorder.requests
    return second.at - first.at


def test_retry_after_seconds_is_honoured(recorder, httpserver, tmp_path):
    recorder.respond = answers((429, {"Retry-After": "1"}))
    # The computed backoff's first wait is at most 0.5 s (full jitter); Retry-After wins.
    config = {"url": httpserver.url_for("/users"), "max_backoff_seconds": 5}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1]
    assert gap(recorder) >= 0.9


def test_retry_after_http_date_is_honoured(recorder, httpserver, tmp_path):
    def respond(seen):
        if len(recorder.requests) == 1:
            # Whole seconds: the date lies between 1 and 2 s ahead of now.
            when = formatdate(time.time() + 2, usegmt=True)
            return Response("slow down", status=503, headers={"Retry-After": when})
        return None

    recorder.respond = respond
    config = {"url": httpserver.url_for("/users"), "max_backoff_seconds": 5}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1]
    assert gap(recorder) >= 0.9


def test_retry_after_is_capped_by_max_backoff_seconds(recorder, httpserver, tmp_path):
    recorder.respond = answers((429, {"Retry-After": "30"}))
    config = {"url": httpserver.url_for("/users"), "max_backoff_seconds": 0.2}
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1]
    assert gap(recorder) < 5  # a sanity bound: the 30 s asked for were not waited


# Timeouts


@pytest.fixture
def threaded_server():
    """A pytest-httpserver that answers concurrent requests, each on its own thread."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def slow_first(server, recorder, seconds=2.0):
    """The first request sleeps `seconds` before answering; later ones answer at once."""

    def respond(seen):
        if len(recorder.requests) == 1:
            time.sleep(seconds)
        return None

    recorder.respond = respond
    server.expect_request(re.compile(".*")).respond_with_handler(recorder)


def test_timeout_is_retried_and_the_next_attempt_succeeds(threaded_server, tmp_path):
    recorder = Recorder()
    slow_first(threaded_server, recorder)
    config = {
        "url": threaded_server.url_for("/users"),
        "timeout_seconds": 0.3,
        "max_retries": 1,
        **FAST,
    }
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids(recorder) == [1, 1]
    assert result.states == [{"bookmarks": {"users": {"id": 1}}}]


def test_timeout_without_retries_fails_naming_the_timeout(threaded_server, tmp_path):
    recorder = Recorder()
    slow_first(threaded_server, recorder)
    config = {
        "url": threaded_server.url_for("/users"),
        "timeout_seconds": 0.3,
        "max_retries": 0,
        **FAST,
    }
    result = run_target(config, ONE_USER, tmp_path)
    assert result.returncode != 0
    assert ids(recorder) == [1]
    line = error_line(result.stderr, "could not be sent")
    assert "timed out" in line.lower()
    assert "'users'" in line
    assert result.states == []
