"""Raw-socket loopback servers that answer slowly, never, or without end.

Each connection is handled on its own thread: the request (headers and a Content-Length
body) is read whole, then `behaviour` writes what it wants to the socket. Behaviours end
on their own after `hold` seconds at most, and at once when the server is closed, so a
test that fails never leaves a thread running for long.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

HOLD = 120.0  # how long a slow or silent answer lasts at most (far past any test's guard)
TICK = 0.2  # seconds between two trickled bytes


class SlowServer:
    """`behaviour(server, conn)` answers each request; see the behaviours below."""

    def __init__(self, behaviour: Callable[[SlowServer, socket.socket], None]) -> None:
        self.behaviour = behaviour
        self.closed = threading.Event()
        self.requests = 0
        self.got_request = threading.Event()
        self.sent = 0  # answer bytes written, over every connection
        self.lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/s") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for_request(self, count: int = 1, limit: float = 30.0) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self.lock:
                if self.requests >= count:
                    return True
            time.sleep(0.02)
        return False

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while _read_request(conn):
                with self.lock:
                    self.requests += 1
                self.got_request.set()
                self.behaviour(self, conn)

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.sent += len(data)

    def __enter__(self) -> SlowServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self._listener.close()


def _read_request(conn: socket.socket) -> bool:
    """Read one request; False when the client closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


# Behaviours


def silent(server: SlowServer, conn: socket.socket) -> None:
    """Never answer (until HOLD passes or the server closes)."""
    server.closed.wait(HOLD)
    raise OSError("silent: done")


def trickle(head: bytes, body: bytes = b"") -> Callable[[SlowServer, socket.socket], None]:
    """Write `head` at once, then `body` one byte per TICK (forever, as far as a test sees)."""

    def behaviour(server: SlowServer, conn: socket.socket) -> None:
        server.send(conn, head)
        end = time.monotonic() + HOLD
        for byte in body:
            if server.closed.wait(TICK) or time.monotonic() > end:
                break
            server.send(conn, bytes([byte]))
        raise OSError("trickle: done")

    return behaviour


TRICKLED_HEADERS = trickle(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000 + b"\r\n\r\n")
TRICKLED_BODY = trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n", b"o" * 10_000)


def huge(size: int, *, chunked: bool, status: int = 200) -> Callable:
    """Answer `size` bytes of body (Content-Length or chunked), as fast as they are taken."""
    block = b"x" * (1 << 20)

    def behaviour(server: SlowServer, conn: socket.socket) -> None:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        server.send(conn, b"HTTP/1.1 %d Answer\r\n%s\r\n\r\n" % (status, framing))
        left = size
        while left > 0 and not server.closed.is_set():
            data = block[: min(left, len(block))]
            server.send(conn, b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            left -= len(data)
        if chunked:
            server.send(conn, b"0\r\n\r\n")

    return behaviour
