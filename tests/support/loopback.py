"""A threaded loopback HTTP(S) server for the auth, signing and pacing tests.

Each connection is answered on its own thread; `answer(got)` decides each answer and
may sleep. Every request is recorded with the number of requests the server was
handling when it arrived (itself included), so tests can see concurrency. An answer of
None drops the connection without answering. Used as a context manager:
`with Server(answer) as server: ...`.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, dict[str, str], str]


@dataclass
class Got:
    """One request as the server received it."""

    method: str
    path: str  # the request target as sent: path and query, escapes intact
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    in_flight: int  # requests being handled on arrival, this one included
    peer: dict | None = None  # the client certificate, over TLS
    done: float = 0.0  # time.monotonic() once answered


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A refused TLS handshake is expected in some tests: no traceback."""


class Server:
    """Records every request; `answer(got)` gives (status, headers, text), or None to drop."""

    def __init__(
        self,
        answer: Callable[[Got], Answer | None] | None = None,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        nodelay: bool = False,
    ) -> None:
        """`nodelay`: answer without the ~40 ms an answer's second write waits for the
        client's delayed ACK (Nagle); for tests that make many requests. Off by default:
        the pacing tests' timings were measured with it off.
        """
        self.answer = answer or (lambda got: (200, {}, "ok"))
        self.requests: list[Got] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.scheme = "https" if tls else "http"
        self.host = host
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = nodelay

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer.lock:
                    outer.in_flight += 1
                    got = Got(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        at=time.monotonic(),
                        in_flight=outer.in_flight,
                        peer=tls and self.connection.getpeercert(),
                    )
                    outer.requests.append(got)
                try:
                    answer = outer.answer(got)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                        got.done = time.monotonic()
                if answer is None:  # close the connection without a word
                    self.close_connection = True
                    return
                status, headers, text = answer
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.httpd = _Quiet((host, 0), Handler)
        if tls is not None:
            # The handshake happens in the handler thread, on the first read.
            self.httpd.socket = tls.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str, host: str | None = None, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{self.scheme}://{at}{host or self.host}:{self.port}{path}"

    def to(self, prefix: str) -> list[Got]:
        """The requests whose path starts with `prefix`, in arrival order."""
        with self.lock:
            return [got for got in self.requests if got.path.startswith(prefix)]

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def items_input(n: int, stream: str = "items") -> str:
    """Singer input: a SCHEMA and records {"id": 1..n} of one stream."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]}]
    lines += [{"type": "RECORD", "stream": stream, "record": {"id": i}} for i in range(1, n + 1)]
    return "\n".join(json.dumps(line) for line in lines) + "\n"
