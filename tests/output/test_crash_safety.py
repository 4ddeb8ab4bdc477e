"""Crash safety: every record covered by an emitted STATE was delivered.

SIGKILL at any point: the STATE lines printed before death only cover records the
server received, and a rerun from the last one delivers the rest (at least once).
SIGTERM/SIGINT: stop reading, let the request in flight finish, emit STATE only for
delivered records, and exit non-zero when records read were left undelivered (the
SDK's own handler would drain and exit 0 instead).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.run import TARGET, clean_env, write_config
from werkzeug import Response

from target_restapi.settings.schema import CONFIG_SCHEMA

STREAM = "s"
N_RECORDS = 300
STATE_EVERY = 10
EXIT_WITHIN = 5.0  # seconds a signalled target may take to exit (guard, not a benchmark)
WAIT_LIMIT = 20.0  # seconds to wait for the target to reach a point (startup included)


def schema_line(stream: str = STREAM) -> str:
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {
                "type": "object",
                "properties": {"pos": {"type": "integer"}, "shard": {"type": "integer"}},
            },
            "key_properties": ["pos"],
        }
    )


def record_line(pos: int, stream: str = STREAM) -> str:
    record = {"pos": pos, "shard": pos % 4}
    return json.dumps({"type": "RECORD", "stream": stream, "record": record})


def state_value(pos: int) -> dict:
    """The STATE after the records 0 .. pos-1: `pos` is where a rerun starts."""
    return {"bookmarks": {STREAM: {"pos": pos}}}


def state_line(pos: int) -> str:
    return json.dumps({"type": "STATE", "value": state_value(pos)})


def crash_input(start: int = 0) -> str:
    """SCHEMA, then records start .. N_RECORDS-1 with a STATE after every tenth one."""
    lines = [schema_line()]
    for pos in range(start, N_RECORDS):
        lines.append(record_line(pos))
        if (pos + 1) % STATE_EVERY == 0:
            lines.append(state_line(pos + 1))
    return "\n".join(lines) + "\n"


def positions(seen) -> list[int]:
    body = seen.json()
    return [r["pos"] for r in body] if isinstance(body, list) else [body["pos"]]


def received(recorder, path: str = "/s") -> list[int]:
    """Positions the server received at `path` (or below it), in arrival order."""
    return [
        pos
        for seen in recorder.requests
        if seen.path == path or seen.path.startswith(path + "/")
        for pos in positions(seen)
    ]


def wait_until(predicate, limit: float = WAIT_LIMIT) -> bool:
    """Poll `predicate` every 20 ms for at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Run:
    """The target as a subprocess; stdout and stderr go to files under `workdir`."""

    def __init__(self, config: dict, workdir: Path, stdin) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = write_config(config, workdir)
        self.out = workdir / "stdout"
        self.err = workdir / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*TARGET, "--config", str(cfg)],
                stdin=stdin,
                stdout=out,
                stderr=err,
                env=clean_env(PYTHONFAULTHANDLER="1"),  # SIGABRT prints every thread's stack
            )

    def states(self) -> list:
        """Complete STATE lines printed so far (a line cut by a kill is not a STATE)."""
        text = self.out.read_text()
        return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def send(self, *lines: str) -> None:
        self.proc.stdin.write(("\n".join(lines) + "\n").encode())
        self.proc.stdin.flush()

    def wait_or_abort(self, seconds: float, why: str) -> int:
        """The exit code; a run still going after `seconds` fails, its thread stacks shown."""
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=EXIT_WITHIN)
            pytest.fail(f"{why} within {seconds}s; stderr:\n{self.stderr}")

    def signal_and_wait(self, signum: int) -> tuple[int, float]:
        """Send `signum`; return the exit code and the seconds the exit took."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=EXIT_WITHIN)
            name = signal.Signals(signum).name
            pytest.fail(f"still running {EXIT_WITHIN}s after {name}; stderr:\n{self.stderr}")
        return code, time.monotonic() - sent

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()


@pytest.fixture
def start(tmp_path):
    """`start(config, name, stdin)` runs the target; every run is killed after the test."""
    runs: list[Run] = []

    def run(config: dict, name: str, stdin=subprocess.PIPE) -> Run:
        started = Run(config, tmp_path / name, stdin)
        runs.append(started)
        return started

    yield run
    for started in runs:
        started.stop()


# SIGKILL at several points of a real run

SHARDS = 4
MODES = {
    "single": {"request_mode": "single"},
    # 7 records a batch and a STATE every 10 records: batches and STATEs never align.
    "batch": {"request_mode": "batch", "batch_size": 7},
    "one": {"request_mode": "one"},
    # Requests to different URLs (one per shard) in flight at once.
    "batch-concurrent": {
        "request_mode": "batch",
        "batch_size": 7,
        "max_concurrency": SHARDS,
        "url_suffix": "/#{shard}",
    },
    "single-concurrent": {
        "request_mode": "single",
        "max_concurrency": SHARDS,
        "url_suffix": "/#{shard}",
    },
}

KILL_POINTS = [
    ("single", 10, "during"),  # the request of the record just before the first STATE
    ("single", 11, "after"),  # just after the first STATE was due
    ("single", 157, "during"),
    ("batch", 1, "during"),  # nothing answered yet: no STATE, rerun from the start
    ("batch", 2, "during"),  # the second batch: STATE 10 waits for it
    ("batch", 2, "after"),
    ("batch", 31, "during"),
    ("one", 1, "during"),  # the only request: no STATE may come before its answer
    ("batch-concurrent", 3, "during"),
    ("batch-concurrent", 22, "during"),
    ("single-concurrent", 45, "during"),
]


STALL_SECONDS = 5


def mode_config(httpserver, mode: str) -> dict:
    settings = dict(MODES[mode])
    if "max_concurrency" in settings and "max_concurrency" not in CONFIG_SCHEMA["properties"]:
        pytest.skip("setting max_concurrency is not available")
    # A request the loopback server stalls on (seen rarely under load: the target waits
    # for an answer body that never comes; stacks in docs/development.md) is cut by the
    # deadline and retried, as in production, instead of outlasting the test's wait.
    url = httpserver.url_for("/s") + settings.pop("url_suffix", "")
    return {"url": url, "timeout_seconds": STALL_SECONDS, "max_backoff_seconds": 0.1, **settings}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "k", "when"), KILL_POINTS, ids=[f"{m}-{k}-{w}" for m, k, w in KILL_POINTS]
)
def test_sigkill_never_leaves_a_state_ahead_of_delivery_and_a_rerun_completes(
    recorder, httpserver, tmp_path, start, mode, k, when
):
    config = mode_config(httpserver, mode)
    first_input = tmp_path / "first.singer"
    first_input.write_text(crash_input())

    runs: list[Run] = []
    seen_requests = {"count": 0}
    killed = threading.Event()  # set once SIGKILL was sent: later answers reach nobody
    acked: set[int] = set()  # records whose request was answered 2xx before the kill

    def kill() -> None:
        runs[0].proc.send_signal(signal.SIGKILL)
        killed.set()

    def kill_on_kth(seen):
        seen_requests["count"] += 1
        if seen_requests["count"] == k:
            if when == "during":  # received in full, but its answer never arrives
                kill()
            else:  # a moment after this request is answered
                threading.Timer(0.005, kill).start()
        if not killed.is_set():
            acked.update(positions(seen))

    recorder.on_request = kill_on_kth
    with first_input.open("rb") as stdin:
        runs.append(start(config, "first", stdin))
        code = runs[0].wait_or_abort(60, f"the {k}th request never came")
    assert code == -signal.SIGKILL, f"not killed (k={k}): exit {code}\n{runs[0].stderr}"

    states = runs[0].states()
    emitted = [value["bookmarks"][STREAM]["pos"] for value in states]
    assert states == [state_value(pos) for pos in emitted]
    assert emitted == sorted(set(emitted)), "STATE went backwards or repeated"
    last = emitted[-1] if emitted else 0
    missing = sorted(set(range(last)) - acked)
    assert not missing, f"STATE pos={last} was emitted but records {missing} were never answered"

    # Rerun from the last STATE: the union of both runs covers every record.
    recorder.on_request = None
    rerun_input = tmp_path / "rerun.singer"
    rerun_input.write_text(crash_input(start=last))
    with rerun_input.open("rb") as stdin:
        rerun = start(config, "rerun", stdin)
        assert rerun.wait_or_abort(60, "the rerun did not end") == 0, rerun.stderr
    assert rerun.states()[-1] == state_value(N_RECORDS)
    assert set(received(recorder)) == set(range(N_RECORDS))


# SIGTERM / SIGINT

SIGNALS = [signal.SIGTERM, signal.SIGINT]
SIGNAL_IDS = ["SIGTERM", "SIGINT"]
SIGTERM_ONLY = SIGNALS[:1]  # one handler for both; SIGINT runs in the main cases


def marker_config(httpserver, **items_settings) -> dict:
    """Stream `s` as asked; stream `marker` sends each record at once to /marker.

    A marker record reaching the server proves every line before it was read.
    """
    return {
        "url": httpserver.url_for("/s"),
        **items_settings,
        "streams": {
            "marker": {"url": httpserver.url_for("/marker"), "request_mode": "single"},
        },
    }


def not_delivered(stderr: str, count: int) -> bool:
    return re.search(rf"\b{count} records? (were|was) not delivered", stderr) is not None


@pytest.mark.parametrize("signum", SIGNALS, ids=SIGNAL_IDS)
def test_signal_with_a_partial_batch_pending_sends_no_more_and_exits_nonzero(
    recorder, httpserver, start, signum
):
    config = marker_config(httpserver, request_mode="batch", batch_size=3)
    run = start(config, "run")
    run.send(schema_line(), schema_line("marker"), *map(record_line, range(3)), state_line(3))
    assert wait_until(lambda: run.states() == [state_value(3)]), run.stderr
    run.send(record_line(3), record_line(4), record_line(0, "marker"))  # 3, 4: a partial batch
    assert wait_until(lambda: received(recorder, "/marker") == [0]), run.stderr

    code, _ = run.signal_and_wait(signum)

    assert code != 0
    assert not_delivered(run.stderr, 2), run.stderr
    assert run.states() == [state_value(3)]
    assert received(recorder) == [0, 1, 2]  # the pending batch was not sent on the way out


@pytest.mark.parametrize("signum", SIGTERM_ONLY, ids=SIGNAL_IDS[:1])
def test_signal_in_request_mode_one_sends_nothing_emits_no_state_and_exits_nonzero(
    recorder, httpserver, start, signum
):
    config = marker_config(httpserver, request_mode="one")
    run = start(config, "run")
    run.send(schema_line(), schema_line("marker"), *map(record_line, range(5)), state_line(5))
    run.send(record_line(0, "marker"))
    assert wait_until(lambda: received(recorder, "/marker") == [0]), run.stderr

    code, _ = run.signal_and_wait(signum)

    assert code != 0
    assert not_delivered(run.stderr, 5), run.stderr
    assert run.states() == []  # STATE 5 covers records never sent
    assert received(recorder) == []


@pytest.mark.parametrize("signum", SIGNALS, ids=SIGNAL_IDS)
def test_signal_while_idle_with_everything_delivered_exits_zero_after_the_last_state(
    recorder, httpserver, start, signum
):
    run = start({"url": httpserver.url_for("/s")}, "run")
    run.send(schema_line(), record_line(0), state_line(1), record_line(1), state_line(2))
    assert wait_until(lambda: len(run.states()) == 2), run.stderr

    code, _ = run.signal_and_wait(signum)  # stdin is still open: the target waits on it

    assert code == 0, run.stderr
    assert run.states() == [state_value(1), state_value(2)]
    assert received(recorder) == [0, 1]
    assert "not delivered" not in run.stderr
    assert "Traceback" not in run.stderr


def slow_answer(started: threading.Event, seconds: float = 1.0):
    """Answer 200 after `seconds`; `started` is set once the body was received in full."""

    def respond(seen):
        started.set()
        time.sleep(seconds)
        return Response("ok", status=200)

    return respond


@pytest.mark.parametrize("signum", SIGNALS, ids=SIGNAL_IDS)
def test_signal_during_a_request_lets_it_finish_then_emits_its_state_and_exits(
    recorder, httpserver, start, signum
):
    started = threading.Event()
    recorder.respond = slow_answer(started)
    config = {
        "url": httpserver.url_for("/s"),
        "request_mode": "batch",
        "batch_size": 100,
        "batch_max_age_seconds": 0.2,
    }
    run = start(config, "run")
    # The tap is silent after STATE 3: the batch of records 0..2 goes once 0.2 s old, and
    # that request is in flight when the signal comes.
    run.send(schema_line(), *map(record_line, range(3)), state_line(3))
    assert started.wait(WAIT_LIMIT), run.stderr
    run.send(record_line(3), record_line(4), state_line(5))  # waiting in the pipe, never read

    code, took = run.signal_and_wait(signum)

    assert took > 0.3, "exited before the request in flight was answered"
    assert [positions(seen) for seen in recorder.requests] == [[0, 1, 2]]
    assert run.states() == [state_value(3)]
    assert code == 0, run.stderr  # every record it read was delivered


@pytest.mark.parametrize("signum", SIGTERM_ONLY, ids=SIGNAL_IDS[:1])
def test_signal_during_a_single_request_lets_it_finish_and_sends_no_more(
    recorder, httpserver, start, signum
):
    started = threading.Event()

    def respond(seen):
        if positions(seen) == [1]:
            return slow_answer(started)(seen)
        return None

    recorder.respond = respond
    run = start({"url": httpserver.url_for("/s")}, "run")
    lines = [schema_line()]
    for pos in range(4):
        lines += [record_line(pos), state_line(pos + 1)]
    run.send(*lines)
    assert started.wait(WAIT_LIMIT), run.stderr

    code, took = run.signal_and_wait(signum)

    assert took > 0.3, "exited before the request in flight was answered"
    assert received(recorder) == [0, 1]
    # STATE 2 may follow once record 1 is answered; nothing later was read or sent.
    assert run.states() in ([state_value(1)], [state_value(1), state_value(2)])
    assert code == 0, run.stderr


@pytest.mark.parametrize("signum", SIGTERM_ONLY, ids=SIGNAL_IDS[:1])
def test_signal_while_waiting_to_retry_stops_at_once_and_exits_nonzero(
    recorder, httpserver, start, signum
):
    recorder.respond = lambda seen: Response("busy", status=503, headers={"Retry-After": "30"})
    config = {"url": httpserver.url_for("/s"), "max_retries": 3, "max_backoff_seconds": 30}
    run = start(config, "run")
    run.send(schema_line(), record_line(0), state_line(1))
    assert wait_until(lambda: len(recorder.requests) == 1), run.stderr
    time.sleep(0.2)  # the target is now waiting 30 s before its retry

    code, _ = run.signal_and_wait(signum)

    assert code != 0
    assert not_delivered(run.stderr, 1), run.stderr
    assert run.states() == []
    assert len(recorder.requests) == 1
