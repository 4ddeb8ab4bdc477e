"""A real redis-server on a free loopback port, for the shared rate limit tests.

redis-server cannot bind port 0 and say which port it got, so a free port is found by
binding a socket to port 0 and closing it; a lost race to another process is retried.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import redis

START_SECONDS = 10  # a guard against a server that never answers, not a speed claim
PASSWORD = "redis-Pw9-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """redis-server with a password, no persistence, on 127.0.0.1; stopped by `stop()`."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def url(self, password: str = PASSWORD) -> str:
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url(), socket_timeout=START_SECONDS)

    def start(self, port: int | None = None) -> RedisServer:
        """Start (again, on the same port when given) and wait until PING answers."""
        assert self.binary, "redis-server is not on PATH"
        for _ in range(5):
            self.port = port or free_port()
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--requirepass", PASSWORD, "--save", "", "--appendonly", "no"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._answers():
                return self
            self.stop()
        raise RuntimeError("redis-server did not start on a free port")

    def _answers(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.client().ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Kill the server at once, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=START_SECONDS)


class Monitor:
    """Every EVALSHA the server runs, as (key, interval) pairs, read through MONITOR."""

    def __init__(self, server: RedisServer) -> None:
        self._client = server.client()
        self._monitor = self._client.monitor()
        self._monitor.connection.send_command("MONITOR")
        self._monitor.connection.read_response()
        self.calls: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                seen = self._monitor.next_command()
                words = seen["command"].split()  # the keys used here hold no spaces
                if seen["client_type"] != "lua" and words and words[0].upper() == "EVALSHA":
                    self.calls.append((words[3], words[4]))
        except (redis.RedisError, OSError, ValueError, AttributeError):
            return  # closed

    def keys(self) -> list[str]:
        return [key for key, _ in self.calls]

    def close(self) -> None:
        self._monitor.connection.disconnect()
        self._thread.join(timeout=START_SECONDS)
