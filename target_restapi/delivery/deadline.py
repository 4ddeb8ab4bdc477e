"""A deadline for a whole request, and a stop that does not wait for a slow server.

requests and urllib3 time out each socket operation, never a request: a server that
trickles one byte a second keeps a request alive for ever. A Watchdog thread shuts the
socket of a request down when its deadline passes, or when a stop was asked for and the
request had `grace` seconds to finish. The read that was waiting then fails at once and
the sender asks its Watch why (`expired`). Connections learn which request they serve
from the thread that sends it (requests sends on the caller's thread).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from urllib3.connectionpool import HTTPConnectionPool

from target_restapi.delivery.session import LeanAdapter

if TYPE_CHECKING:  # the mixin is only ever mixed into urllib3 connection classes
    from urllib3.connection import HTTPConnection as _Connection
else:
    _Connection = object

STOP_GRACE_SECONDS = 3.0  # a request in flight at a stop may finish within this
POLL_SECONDS = 0.2  # how soon a stop is noticed while requests are in flight

_current = threading.local()


class Watch:
    """One request (with its redirects and token fetches) and why it was cut, if it was.

    Used as `with watchdog.watch(seconds) as watch:` around the request, on its thread.
    """

    __slots__ = ("_connections", "_watchdog", "deadline", "expired")

    def __init__(self, deadline: float, watchdog: Watchdog) -> None:
        self.deadline = deadline
        self.expired: str | None = None  # "timeout" or "stopped" once its sockets were shut
        self._connections: list[Any] = []
        self._watchdog = watchdog

    def __enter__(self) -> Watch:
        self._watchdog.add(self)
        _current.watch = self
        return self

    def __exit__(self, *_: object) -> None:
        _current.watch = None
        self._watchdog.discard(self)

    def attach(self, connection: Any) -> None:
        """A connection now carries this request; shut it at once if the request is over."""
        if connection not in self._connections:
            self._connections.append(connection)
        if self.expired is not None:
            _shut(connection)

    def expire(self, why: str) -> None:
        """Cut the request: shut every socket it uses, so a blocked read returns."""
        self.expired = why
        for connection in list(self._connections):
            _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed
        # The plain socket's shutdown: the TLS state stays with the reading thread.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Shuts down the sockets of requests past their deadline, or of all once stopping."""

    def __init__(self, stop: threading.Event, grace: float) -> None:
        self._stop = stop
        self._grace = grace
        self._stop_at: float | None = None
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._idle = False  # waiting for a request, with no time limit
        with self._changed:  # started now: starting it with a request would delay that one
            self._start()

    def watch(self, seconds: float) -> Watch:
        """Watch the request sent on this thread inside the block for `seconds` at most."""
        return Watch(time.monotonic() + seconds, self)

    def add(self, watch: Watch) -> None:
        """Start watching `watch` (its block begins)."""
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:  # after close()
                self._start()
            if self._idle or watch.deadline - time.monotonic() < POLL_SECONDS:
                self._changed.notify()  # else it wakes in time on its own

    def discard(self, watch: Watch) -> None:
        """Stop watching `watch` (its block ended)."""
        with self._lock:
            self._watches.discard(watch)

    def close(self) -> None:
        """End the watchdog thread (it is restarted by the next watch)."""
        with self._changed:
            thread, self._thread = self._thread, None
            self._changed.notify()
        if thread is not None:
            thread.join(timeout=5)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        with self._changed:
            while self._thread is me:
                now = time.monotonic()
                if self._stop.is_set() and self._stop_at is None:
                    self._stop_at = now
                for watch in list(self._watches):
                    if watch.expired is None and now >= watch.deadline:
                        watch.expire("timeout")
                    elif watch.expired is None and self._stopped(now):
                        watch.expire("stopped")
                pending = [w.deadline for w in self._watches if w.expired is None]
                if not pending:
                    self._idle = True
                    self._changed.wait()
                    self._idle = False
                    continue
                wake = min(pending) - now
                if self._stop_at is not None:
                    wake = min(wake, self._stop_at + self._grace - now)
                self._changed.wait(max(0.01, min(wake, POLL_SECONDS)))

    def _stopped(self, now: float) -> bool:
        return self._stop_at is not None and now >= self._stop_at + self._grace


def _current_watch() -> Watch | None:
    return getattr(_current, "watch", None)


class _Watched(_Connection):
    """Mixin for urllib3 connections: join the request of the sending thread's Watch.

    Once connected, a watched request sends and reads with no socket timeout: the Watch's
    deadline (the whole request's) comes before any per-read timeout anyway, and a socket
    with a timeout costs a poll() before every send and read, each handing the GIL to
    another thread. Connecting keeps its timeout: there is no socket to shut until then.
    """

    def connect(self) -> None:
        watch = _current_watch()
        if watch is not None:
            watch.attach(self)
        super().connect()
        if watch is not None and watch.expired is not None:
            _shut(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _current_watch()
        if watch is not None:
            watch.attach(self)
            if self.sock is not None:  # kept alive: connected already
                self.timeout = None
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        if _current_watch() is not None:
            self.timeout = None
        return super().getresponse(*args, **kwargs)


_watched_classes: dict[type, type] = {}


def _watched(cls: type) -> type:
    """`cls` with the _Watched mixin (made once per connection class)."""
    if issubclass(cls, _Watched):
        return cls
    if cls not in _watched_classes:
        _watched_classes[cls] = type(f"Watched{cls.__name__}", (_Watched, cls), {})
    return _watched_classes[cls]


class WatchedAdapter(LeanAdapter):
    """An adapter whose connections (direct or through a proxy) obey the Watchdog."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        """The pool for a request, its connections made watchable."""
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        if isinstance(pool, HTTPConnectionPool):  # https pools too: they subclass it
            pool.ConnectionCls = _watched(pool.ConnectionCls)
        return pool
