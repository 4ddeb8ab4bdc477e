"""Run requests with up to N in flight per stream, never two for the same key at once.

An update must not overtake an earlier update of the same thing, so jobs that share a
key (the rendered URL) run one after another, in order, on one worker, whichever
stream they come from: the key queues and the worker threads (`Workers`) belong to the
run, each stream's `Dispatcher` only counts its own jobs against its own limit. Threads
are started when first needed, at most the largest limit of any stream: 10,000 streams
cost no more threads than one. With N = 1 a stream's jobs run inline on the caller's
thread, in input order. Knows nothing of HTTP or Singer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

Job = Callable[[], None]


class Workers:
    """The run's worker threads and the queue of each key that has a job running."""

    def __init__(self, threads: int, name: str) -> None:
        self._threads = max(1, threads)
        self._name = name
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[tuple[Dispatcher, Job]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def claim(self, key: Hashable, owner: Dispatcher, job: Job) -> bool:
        """True: `key` is now the caller's to run `job`; False: queued behind the key's jobs."""
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:
                queue.append((owner, job))
                return False
            self._queues[key] = deque()
            return True

    def run(self, key: Hashable, owner: Dispatcher, job: Job) -> None:
        """Run a claimed key's job on a worker, then the jobs queued behind it."""
        with self._lock:
            if self._pool is None:  # ThreadPoolExecutor itself starts threads as needed
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix=self._name)
            pool = self._pool
        pool.submit(self._run, key, owner, job)

    def release(self, key: Hashable) -> None:
        """The claimed key's job ran inline: hand the jobs queued meanwhile to a worker."""
        following = self._next(key)
        if following is not None:
            self.run(key, *following)

    def close(self) -> None:
        """Finish the jobs in flight and stop the threads (started again when needed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _run(self, key: Hashable, owner: Dispatcher, job: Job) -> None:
        following: tuple[Dispatcher, Job] | None = (owner, job)
        while following is not None:
            following[0].execute(following[1])
            following = self._next(key)

    def _next(self, key: Hashable) -> tuple[Dispatcher, Job] | None:
        with self._lock:
            queue = self._queues[key]
            if queue:
                return queue.popleft()
            del self._queues[key]
            return None


class Dispatcher:
    """One stream's bounded, key-ordered jobs; the first job error is raised to the caller.

    `workers` are the run's; without them the dispatcher has threads of its own.
    """

    def __init__(self, max_in_flight: int, name: str, workers: Workers | None = None) -> None:
        self._inline = max_in_flight <= 1
        self._own = workers is None
        self._workers = workers or Workers(max_in_flight, name)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._idle = threading.Condition()
        self._running = 0  # submitted, not yet finished
        self._error: BaseException | None = None

    def submit(self, key: Hashable, job: Job) -> None:
        """Run `job` now (inline) or when a slot and its key are free; blocks when full."""
        self.raise_error()
        self._slots.acquire()
        with self._idle:
            self._running += 1
        if not self._workers.claim(key, self, job):
            if self._inline:  # behind another stream's job for the key: still one at a time
                self.wait()
            return
        if not self._inline:
            self._workers.run(key, self, job)
            return
        try:
            job()  # its error is raised here, on the caller's thread
        finally:
            self._finished()
            self._workers.release(key)

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
        """Finish the jobs in flight; stop the threads if they are this dispatcher's own."""
        self.wait(raise_error=False)
        if self._own:
            self._workers.close()

    def execute(self, job: Job) -> None:
        """Run one job on a worker; after a failure, run no more of this dispatcher's."""
        try:
            if self._error is None:
                job()
        except BaseException as exc:
            with self._idle:
                self._error = self._error or exc
        finally:
            self._finished()

    def _finished(self) -> None:
        self._slots.release()
        with self._idle:
            self._running -= 1
            self._idle.notify_all()
