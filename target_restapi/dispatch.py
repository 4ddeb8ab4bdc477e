"""Run requests with up to N in flight, never two for the same key at once.

An update must not overtake an earlier update of the same thing, so jobs that share a
key (the rendered URL) run one after another, in order, on one worker. With N = 1 jobs
run inline on the caller's thread, in input order. Knows nothing of HTTP or Singer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

Job = Callable[[], None]


class Dispatcher:
    """Bounded, key-ordered execution of jobs; the first job error is raised to the caller."""

    def __init__(self, max_in_flight: int, name: str) -> None:
        self._inline = max_in_flight <= 1
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._running = 0
        self._error: BaseException | None = None
        self._pool = None
        if not self._inline:
            self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix=name)

    def submit(self, key: Hashable, job: Job) -> None:
        """Run `job` now (inline) or when a slot and its key are free; blocks when full."""
        self.raise_error()
        if self._pool is None:
            job()
            return
        self._slots.acquire()
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)
                return
            self._queues[key] = deque()
            self._running += 1
        self._pool.submit(self._run, key, job)

    def wait(self, *, raise_error: bool = True) -> None:
        """Block until every submitted job has finished, then raise the first error."""
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0)
        if raise_error:
            self.raise_error()

    def raise_error(self) -> None:
        """Re-raise, on the caller's thread, the first error a job raised."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Finish the jobs in flight and stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _run(self, key: Hashable, job: Job | None) -> None:
        while job is not None:
            try:
                if self._error is None:  # after a failure, send nothing more
                    job()
            except BaseException as exc:
                with self._lock:
                    self._error = self._error or exc
            finally:
                self._slots.release()
            with self._lock:
                queue = self._queues[key]
                job = queue.popleft() if queue else None
                if job is None:
                    del self._queues[key]
                    self._running -= 1
                    self._idle.notify_all()
