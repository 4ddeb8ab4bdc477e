"""Standard input that a signal can interrupt at any moment, even just before a read blocks.

Each test runs in pytest's main thread (only it runs Python signal handlers); a SIGALRM
deadline turns a read that would hang into a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import pytest

from target_restapi.singer_input.interruptible import interruptible
from target_restapi.singer_input.reader import SingerLineReader

DEADLINE = 10  # seconds before a read that should have ended fails the test


@contextlib.contextmanager
def deadline(seconds: float):
    def expire(signum, frame):
        raise TimeoutError("the read did not end")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def tap():
    """A pipe like the one from the tap: its write end stays open unless a test closes it."""
    read_end, write_end = os.pipe()
    previous = signal.getsignal(signal.SIGUSR1)
    yield read_end, write_end
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGUSR1, previous)
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_a_signal_ends_a_read_that_waits_for_the_tap(tap):
    reader = SingerLineReader()
    signal.signal(signal.SIGUSR1, lambda signum, frame: reader.interrupt(signum))
    stream = interruptible(tap[0], reader.stop)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    with deadline(DEADLINE):
        assert stream.readline() == b""
    timer.join()
    assert reader.stopped_by == signal.SIGUSR1


def test_a_signal_handled_just_before_the_read_ends_it_at_once(tap):
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: stop.set())
    stream = interruptible(tap[0], stop)
    os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs here, before the read starts
    with deadline(DEADLINE):
        assert stream.readline() == b""


def test_lines_are_read_as_the_tap_writes_them(tap):
    stream = interruptible(tap[0], threading.Event())
    os.write(tap[1], b'{"a": 1}\n{"b"')

    def finish() -> None:
        os.write(tap[1], b": 2}\n")
        os.close(tap[1])

    timer = threading.Timer(0.2, finish)
    timer.start()
    with deadline(DEADLINE):
        assert list(stream) == [b'{"a": 1}\n', b'{"b": 2}\n']
    timer.join()
