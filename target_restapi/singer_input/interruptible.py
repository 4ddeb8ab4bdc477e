"""Standard input that a signal can interrupt at any moment, even just before a read blocks.

A Python signal handler runs only between bytecodes: a signal that lands just before
read() blocks would wait for the tap's next line, forever when the tap is idle. The
interpreter's C handler writes to a wakeup pipe at once, and select() watches it.
While it waits, `idle` runs when due (it says in how many seconds it is due next), on
the reading thread: what it touches needs no lock.
"""

from __future__ import annotations

import io
import os
import select
import signal
import threading
from collections.abc import Callable
from typing import IO, Any

INPUT_BUFFER = 1 << 16  # bytes read from the tap per system call


Idle = Callable[[], "float | None"]


def _never() -> None:
    """Nothing to do while waiting."""


def interruptible(fd: int, stop: threading.Event, idle: Idle = _never) -> IO[bytes]:
    """Lines from `fd` whose reads end, returning no more data, once `stop` is set by a signal.

    Call it from the main thread: it installs the signal wakeup pipe.
    """
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    raw = _Interruptible(fd, wake_read, stop, idle)
    return io.BufferedReader(raw, buffer_size=INPUT_BUFFER)


class _Interruptible(io.RawIOBase):
    """The raw reads of `interruptible`."""

    def __init__(self, fd: int, wakeup: int, stop: threading.Event, idle: Idle) -> None:
        super().__init__()
        self._fd = fd
        self._wakeup = wakeup
        self._stop = stop
        self._idle = idle

    def readable(self) -> bool:
        """Always: it is an input."""
        return True

    def fileno(self) -> int:
        """The input's file descriptor."""
        return self._fd

    def readinto(self, buffer: Any) -> int:
        """Read what the tap wrote; 0 (as at the end of input) once a stop is asked for."""
        watched = [self._fd, self._wakeup]
        ready, _, _ = select.select(watched, [], [], 0)  # the tap keeps up: no idle work
        while not self._stop.is_set():
            if not ready:
                ready, _, _ = select.select(watched, [], [], self._idle())
            if self._fd in ready:
                return os.readv(self._fd, [buffer])
            if self._wakeup in ready:
                os.read(self._wakeup, 512)  # a signal: its handler runs as this call returns
            ready = []
        return 0
