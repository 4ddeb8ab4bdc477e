"""Dispatcher (target_restapi/delivery/dispatch.py) on its own: threads and jobs, no HTTP.

Jobs block on events the test controls, so "running at once" is observed, not timed.
Where a test must show that something does NOT happen, it waits a short bounded time.
"""

from __future__ import annotations

import threading
import time

import pytest

from target_restapi.delivery.dispatch import Dispatcher, Workers

TIMEOUT = 10  # guard against a hang, never an assertion about speed
QUIET = 0.3  # how long "nothing else starts" is watched for


class Boom(Exception):
    pass


class Probe:
    """Counts jobs running at once and logs starts and ends, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.running = 0
        self.peak = 0
        self.log: list[tuple[str, object]] = []
        self.threads: dict[object, int] = {}

    def job(self, name: object, gate: threading.Event | None = None, error=None):
        def run() -> None:
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.log.append(("start", name))
                self.threads[name] = threading.get_ident()
                self.lock.notify_all()
            try:
                if gate is not None:
                    assert gate.wait(TIMEOUT), f"job {name} was never released"
                if error is not None:
                    raise error
            finally:
                with self.lock:
                    self.running -= 1
                    self.log.append(("end", name))
                    self.lock.notify_all()

        return run

    def wait_for(self, predicate, what: str) -> None:
        with self.lock:
            assert self.lock.wait_for(predicate, TIMEOUT), f"timed out waiting for {what}"

    def started(self) -> list[object]:
        with self.lock:
            return [name for kind, name in self.log if kind == "start"]

    def ended(self) -> list[object]:
        with self.lock:
            return [name for kind, name in self.log if kind == "end"]


def in_thread(fn) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def bounded(fn, *args, **kwargs):
    """Call `fn` on a helper thread: fail instead of hanging, re-raise what it raised."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = in_thread(run)
    thread.join(TIMEOUT)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {TIMEOUT} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def dispatchers():
    made: list[Dispatcher] = []

    def make(n: int) -> Dispatcher:
        d = Dispatcher(n, "test")
        made.append(d)
        return d

    yield make
    for d in made:
        bounded(d.wait, raise_error=False)
        bounded(d.close)


# max 1: inline


def test_max_one_runs_each_job_inline_on_the_callers_thread_in_order(dispatchers):
    d = dispatchers(1)
    probe = Probe()
    for i in range(5):
        d.submit(f"key{i % 2}", probe.job(i))
        # Already done when submit returns: nothing runs in the background.
        assert probe.ended()[-1] == i
    bounded(d.wait)
    assert probe.started() == [0, 1, 2, 3, 4]
    assert set(probe.threads.values()) == {threading.get_ident()}
    assert probe.peak == 1


def test_max_one_job_error_is_raised_by_submit_itself(dispatchers):
    d = dispatchers(1)
    probe = Probe()
    with pytest.raises(Boom, match="inline"):
        d.submit("a", probe.job("bad", error=Boom("inline")))
    assert probe.ended() == ["bad"]


# N > 1: bounded concurrency


def test_jobs_one_after_another_reuse_one_idle_thread(dispatchers):
    d = dispatchers(4)
    probe = Probe()
    for i in range(10):
        bounded(d.submit, i, probe.job(i))
        bounded(d.wait)
    assert probe.ended() == list(range(10))
    assert len(set(probe.threads.values())) == 1


def test_two_threads_waiting_at_once_both_return_once_the_jobs_ended(dispatchers):
    d = dispatchers(3)
    probe = Probe()
    gate = threading.Event()
    for i in range(3):
        bounded(d.submit, i, probe.job(i, gate))
    probe.wait_for(lambda: probe.running == 3, "three jobs running")
    waiters = [in_thread(d.wait) for _ in range(2)]
    gate.set()
    for waiter in waiters:
        waiter.join(TIMEOUT)
        assert not waiter.is_alive(), "a wait() never returned"
    assert sorted(probe.ended()) == [0, 1, 2]
    bounded(d.submit, "after", probe.job("after"))  # every slot is free again
    bounded(d.wait)
    assert probe.ended()[-1] == "after"


def test_with_n_jobs_run_on_worker_threads_and_at_most_n_at_once(dispatchers):
    n = 3
    d = dispatchers(n)
    probe = Probe()
    gate = threading.Event()
    submitted: list[int] = []

    def submit_all() -> None:
        for i in range(10):
            d.submit(i, probe.job(i, gate))  # distinct keys: only the bound limits them
            submitted.append(i)

    submitter = in_thread(submit_all)
    probe.wait_for(lambda: probe.running == n, f"{n} jobs running at once")
    # With N running and blocked, no further job may start and submit must block.
    time.sleep(QUIET)
    assert probe.running == n
    assert probe.peak == n
    assert len(submitted) < 10, "submit() did not block while every slot was taken"
    assert all(tid != threading.get_ident() for tid in probe.threads.values())

    gate.set()
    submitter.join(TIMEOUT)
    assert not submitter.is_alive()
    bounded(d.wait)
    assert sorted(probe.ended()) == list(range(10))
    assert probe.peak == n


def test_many_jobs_without_blocking_never_exceed_n(dispatchers):
    n = 4
    d = dispatchers(n)
    probe = Probe()

    def job(i):
        inner = probe.job(i)

        def run() -> None:
            time.sleep(0.002)  # widen each job so overlaps are likely
            inner()

        return run

    def submit_all() -> None:
        for i in range(200):
            d.submit(i % 50, job(i))

    bounded(submit_all)
    bounded(d.wait)
    assert len(probe.ended()) == 200
    assert 1 <= probe.peak <= n


# Same key: never together, in submission order


def test_jobs_with_the_same_key_never_overlap_and_run_in_submission_order(dispatchers):
    d = dispatchers(8)
    probe = Probe()
    first_k = threading.Event()
    # k0 is held; k1..k3 must wait behind it while the j jobs (another key) run freely.
    bounded(d.submit, "k", probe.job(("k", 0), first_k))
    for i in range(1, 4):
        bounded(d.submit, "k", probe.job(("k", i)))
    for i in range(3):
        bounded(d.submit, "j", probe.job(("j", i)))
    probe.wait_for(lambda: ("j", 2) in probe.ended(), "the other key's jobs to finish")
    time.sleep(QUIET)
    assert [name for name in probe.started() if name[0] == "k"] == [("k", 0)], (
        "a job started while an earlier job of the same key was still running"
    )

    first_k.set()
    bounded(d.wait)
    log = [(kind, name) for kind, name in probe.log if name[0] == "k"]
    expected = [(kind, ("k", i)) for i in range(4) for kind in ("start", "end")]
    assert log == expected
    j_log = [(kind, name) for kind, name in probe.log if name[0] == "j"]
    assert j_log == [(kind, ("j", i)) for i in range(3) for kind in ("start", "end")]


def test_interleaved_keys_each_keep_their_order_under_load(dispatchers):
    d = dispatchers(6)
    lock = threading.Lock()
    per_key: dict[str, list[int]] = {}
    busy: dict[str, bool] = {}
    overlaps: list[str] = []

    def job(key: str, i: int):
        def run() -> None:
            with lock:
                if busy.get(key):
                    overlaps.append(key)
                busy[key] = True
            time.sleep(0.001)
            with lock:
                per_key.setdefault(key, []).append(i)
                busy[key] = False

        return run

    keys = ["a", "b", "c"]

    def submit_all() -> None:
        for i in range(150):
            d.submit(keys[i % 3], job(keys[i % 3], i))

    bounded(submit_all)
    bounded(d.wait)
    assert overlaps == []
    for offset, key in enumerate(keys):
        assert per_key[key] == list(range(offset, 150, 3))


# Errors


def test_first_job_error_is_raised_on_the_callers_thread_at_next_submit(dispatchers):
    d = dispatchers(4)
    probe = Probe()
    error = Boom("job failed")
    bounded(d.submit, "a", probe.job("bad", error=error))
    bounded(d.wait, raise_error=False)  # the failing job is finished; nothing raised yet
    caught = []
    try:
        d.submit("b", probe.job("after"))
    except Boom as exc:
        caught.append((exc, threading.get_ident()))
    assert caught == [(error, threading.get_ident())]
    assert "after" not in probe.started()


def test_first_job_error_is_raised_by_wait(dispatchers):
    d = dispatchers(4)
    probe = Probe()
    error = Boom("job failed")
    bounded(d.submit, "a", probe.job("ok"))
    bounded(d.submit, "b", probe.job("bad", error=error))
    with pytest.raises(Boom) as info:
        bounded(d.wait)
    assert info.value is error
    with pytest.raises(Boom):  # the error stays: it is raised again, never swallowed
        bounded(d.wait)


def test_wait_without_raise_error_does_not_raise(dispatchers):
    d = dispatchers(4)
    probe = Probe()
    bounded(d.submit, "a", probe.job("bad", error=Boom("x")))
    bounded(d.wait, raise_error=False)
    bounded(d.wait, raise_error=False)
    assert probe.ended() == ["bad"]
    with pytest.raises(Boom):
        d.raise_error()


def test_the_first_error_wins_over_later_ones(dispatchers):
    d = dispatchers(4)
    probe = Probe()
    gate_a, gate_b = threading.Event(), threading.Event()
    first, second = Boom("first"), Boom("second")
    bounded(d.submit, "a", probe.job("a", gate_a, error=first))
    bounded(d.submit, "b", probe.job("b", gate_b, error=second))
    probe.wait_for(lambda: probe.running == 2, "both jobs running")
    gate_a.set()
    probe.wait_for(lambda: "a" in probe.ended(), "job a to fail")
    for _ in range(200):  # bounded: the error is stored just after the job returns
        try:
            d.raise_error()
        except Boom:
            break
        time.sleep(0.01)
    gate_b.set()
    with pytest.raises(Boom) as info:
        bounded(d.wait)
    assert info.value is first


def test_after_an_error_no_queued_job_runs(dispatchers):
    d = dispatchers(8)
    probe = Probe()
    gate = threading.Event()
    bounded(d.submit, "k", probe.job("bad", gate, error=Boom("x")))
    for i in range(3):
        bounded(d.submit, "k", probe.job(("queued", i)))  # same key: queued behind the failing job
    gate.set()
    bounded(d.wait, raise_error=False)
    assert probe.started() == ["bad"]
    with pytest.raises(Boom):
        bounded(d.submit, "other", probe.job("later"))
    bounded(d.wait, raise_error=False)
    assert probe.started() == ["bad"]


def test_after_an_error_jobs_waiting_for_a_slot_do_not_run(dispatchers):
    n = 2
    d = dispatchers(n)
    probe = Probe()
    gate_bad, gate_slow = threading.Event(), threading.Event()
    bounded(d.submit, "bad", probe.job("bad", gate_bad, error=Boom("x")))
    bounded(d.submit, "slow", probe.job("slow", gate_slow))
    probe.wait_for(lambda: probe.running == n, "both slots busy")
    blocked_submit = {}

    def submit_third() -> None:
        try:
            d.submit("third", probe.job("third"))  # blocks: no free slot yet
            blocked_submit["ok"] = True
        except Boom as exc:
            blocked_submit["error"] = exc

    submitter = in_thread(submit_third)
    time.sleep(QUIET)
    assert blocked_submit == {}, "submit() did not wait for a free slot"
    gate_bad.set()  # the failure frees a slot; the waiting job gets it, but must not run
    submitter.join(TIMEOUT)
    assert not submitter.is_alive()
    assert blocked_submit == {"ok": True}  # it was handed over before the failure...
    gate_slow.set()
    bounded(d.wait, raise_error=False)
    assert "third" not in probe.started()  # ...and still never ran
    assert sorted(probe.started()) == ["bad", "slow"]


def test_close_lets_jobs_in_flight_finish(dispatchers):
    d = dispatchers(3)
    probe = Probe()
    gate = threading.Event()
    for i in range(3):
        bounded(d.submit, i, probe.job(i, gate))
    probe.wait_for(lambda: probe.running == 3, "three jobs running")
    closer = in_thread(d.close)
    gate.set()
    closer.join(TIMEOUT)
    assert not closer.is_alive()
    assert sorted(probe.ended()) == [0, 1, 2]


# Dispatchers sharing the run's Workers (one per stream)


def test_streams_sharing_workers_never_run_one_key_at_once_and_keep_submission_order():
    workers = Workers(4, "test")
    a, b = Dispatcher(4, "a", workers), Dispatcher(4, "b", workers)
    probe = Probe()
    gate = threading.Event()
    bounded(a.submit, "k", probe.job(("a", 0), gate))  # held: the others queue behind it
    bounded(b.submit, "k", probe.job(("b", 1)))
    bounded(a.submit, "k", probe.job(("a", 2)))
    bounded(b.submit, "j", probe.job(("b", "j")))  # another key runs meanwhile
    probe.wait_for(lambda: ("b", "j") in probe.ended(), "the job of another key")
    assert probe.started() == [("a", 0), ("b", "j")]
    gate.set()
    bounded(a.wait)
    bounded(b.wait)
    assert [name for name in probe.started() if name[1] != "j"] == [("a", 0), ("b", 1), ("a", 2)]
    assert probe.peak == 2
    bounded(workers.close)


def test_an_inline_stream_waits_behind_another_streams_job_for_the_same_key():
    workers = Workers(4, "test")
    threaded, inline = Dispatcher(4, "threaded", workers), Dispatcher(1, "inline", workers)
    probe = Probe()
    gate = threading.Event()
    bounded(threaded.submit, "k", probe.job("first", gate))
    submitter = in_thread(lambda: inline.submit("k", probe.job("second")))
    time.sleep(QUIET)
    assert probe.started() == ["first"], "the inline job did not wait for the key"
    gate.set()
    submitter.join(TIMEOUT)
    assert not submitter.is_alive()
    assert probe.ended() == ["first", "second"]  # done when its submit returned
    assert probe.peak == 1
    bounded(workers.close)


def test_workers_start_threads_as_needed_and_no_more_than_their_number():
    workers = Workers(2, "capped")
    dispatchers = [Dispatcher(2, f"s{i}", workers) for i in range(50)]
    probe = Probe()
    for i, d in enumerate(dispatchers):
        bounded(d.submit, i, probe.job(i))
    for d in dispatchers:
        bounded(d.wait)
    assert len(probe.ended()) == 50
    assert len(set(probe.threads.values())) <= 2
    bounded(workers.close)
