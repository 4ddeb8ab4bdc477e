"""Run requests with up to N in flight per stream, never two for the same key at once.

An update must not overtake an earlier update of the same thing, so jobs that share a
key (the rendered URL) run one after another, in order, on one worker, whichever
stream they come from: the key queues and the worker threads (`Workers`) belong to the
run, each stream's `Dispatcher` only counts its own jobs against its own limit. Threads
are started when first needed, at most the largest limit of any stream: 10,000 streams
cost no more threads than one. With N = 1 a stream's jobs run inline on the caller's
thread, in input order. Knows nothing of HTTP or Singer.

In single mode every record is a job, so a job's hand-over is on the hot path: it uses
plain locks and C queues (`SimpleQueue`), never a Condition (pure Python, and a wake-up
of every waiter on each change).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from queue import SimpleQueue

Job = Callable[[], None]
_Queued = tuple[Hashable, "Dispatcher", Job]


class Workers:
    """The run's worker threads and the queue of each key that has a job running."""

    def __init__(self, threads: int, name: str) -> None:
        self._threads = max(1, threads)
        self._name = name
        self._lock = threading.Lock()
        # A key with a job running: the jobs queued behind it (None: none yet).
        self._queues: dict[Hashable, deque[tuple[Dispatcher, Job]] | None] = {}
        self._jobs: SimpleQueue[_Queued | None] = SimpleQueue()
        self._started: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job that no `run` has counted on yet

    def claim(self, key: Hashable, owner: Dispatcher, job: Job) -> bool:
        """True: `key` is now the caller's to run `job`; False: queued behind the key's jobs."""
        with self._lock:
            if key not in self._queues:
                self._queues[key] = None
                return True
            queue = self._queues[key]
            if queue is None:
                self._queues[key] = deque([(owner, job)])
            else:
                queue.append((owner, job))
            return False

    def run(self, key: Hashable, owner: Dispatcher, job: Job) -> None:
        """Run a claimed key's job on a worker, then the jobs queued behind it."""
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes it
            elif len(self._started) < self._threads:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._started)}", daemon=True
                )
                self._started.append(thread)
                thread.start()
        self._jobs.put((key, owner, job))  # else the first thread done with its job takes it

    def release(self, key: Hashable) -> None:
        """The claimed key's job ran inline: hand the jobs queued meanwhile to a worker."""
        following = self._next(key)
        if following is not None:
            self.run(key, *following)

    def close(self) -> None:
        """Finish the jobs in flight and stop the threads (started again when needed)."""
        with self._lock:
            threads, self._started = self._started, []
            self._idle = 0
            for _ in threads:
                self._jobs.put(None)
        for thread in threads:
            thread.join()

    def _work(self) -> None:
        jobs = self._jobs
        while (item := jobs.get()) is not None:
            key, owner, job = item
            following: tuple[Dispatcher, Job] | None = (owner, job)
            while following is not None:
                following[0].execute(following[1])
                following = self._next(key)
            with self._lock:
                self._idle += 1

    def _next(self, key: Hashable) -> tuple[Dispatcher, Job] | None:
        with self._lock:
            queue = self._queues[key]
            if queue:
                return queue.popleft()
            del self._queues[key]
            return None


class Dispatcher:
    """One stream's bounded, key-ordered jobs; the first job error is raised to the caller.

    `workers` are the run's; without them the dispatcher has threads of its own. Each job
    holds one of N tokens from submit until it has run: all N back means none is running.
    """

    def __init__(self, max_in_flight: int, name: str, workers: Workers | None = None) -> None:
        self._inline = max_in_flight <= 1
        self._own = workers is None
        self._workers = workers or Workers(max_in_flight, name)
        self._size = max(1, max_in_flight)
        self._slots: SimpleQueue[None] = SimpleQueue()
        for _ in range(self._size):
            self._slots.put(None)
        self._waiting = threading.Lock()  # two waiters taking tokens at once could deadlock
        self._error_lock = threading.Lock()
        self._error: BaseException | None = None

    def submit(self, key: Hashable, job: Job) -> None:
        """Run `job` now (inline) or when a slot and its key are free; blocks when full."""
        self.raise_error()
        self._slots.get()
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
            self._slots.put(None)
            self._workers.release(key)

    def wait(self, *, raise_error: bool = True) -> None:
        """Block until every submitted job has finished, then raise the first error."""
        slots = self._slots
        with self._waiting:
            for _ in range(self._size):
                slots.get()
            for _ in range(self._size):
                slots.put(None)
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
            with self._error_lock:
                self._error = self._error or exc
        finally:
            self._slots.put(None)
