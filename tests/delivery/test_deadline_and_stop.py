"""`timeout_seconds` bounds a whole request, and a stop does not wait for a slow server.

Real servers on loopback trickle an answer one byte every 0.2 s (each read is quick, the
answer never ends), or never answer, for 120 s. The bounds asserted here (EXIT_WITHIN)
are hang guards far below that, never measurements of speed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.loopback import Server, items_input
from support.run import TARGET, clean_env, run_target, write_config
from support.slow_servers import TRICKLED_BODY, TRICKLED_HEADERS, SlowServer, silent

from target_restapi.delivery.retry import RetryPolicy
from target_restapi.delivery.transport import Connections, Request, Transport
from target_restapi.output.redact import Redactor

EXIT_WITHIN = 10.0  # seconds after a signal (a slow server would hold 120 s)
SLOW = {"silent": silent, "trickled-headers": TRICKLED_HEADERS, "trickled-body": TRICKLED_BODY}


# timeout_seconds: a deadline for the request, not for each read


@pytest.mark.parametrize("behaviour", ["trickled-headers", "trickled-body"])
def test_a_trickled_answer_times_out_as_a_whole_and_is_retried(tmp_path, behaviour):
    with SlowServer(SLOW[behaviour]) as server:
        config = {
            "url": server.url(),
            "timeout_seconds": 1,
            "max_retries": 1,
            "max_backoff_seconds": 0.01,
        }
        result = run_target(config, items_input(1, "s"), tmp_path)  # hangs without a deadline
        requests = server.requests

    assert result.returncode == 1
    assert requests == 2  # a timeout is worth another attempt
    (line,) = [line for line in result.stderr.splitlines() if "timeout_seconds" in line]
    assert "timed out, no complete answer within timeout_seconds (1 s) (after 2 attempts)" in line
    assert result.states == []


def test_a_silent_server_times_out_as_a_whole_though_reads_have_no_socket_timeout(tmp_path):
    with SlowServer(silent) as server:
        config = {"url": server.url(), "timeout_seconds": 1, "max_retries": 0}
        # In a process of its own: the silent server's thread outlives the run.
        result = run_target(config, items_input(1, "s"), tmp_path, subprocess_run=True)
        sent = server.requests

    assert result.returncode == 1
    assert sent == 1
    (line,) = [line for line in result.stderr.splitlines() if "timeout_seconds" in line]
    assert "timed out, no complete answer within timeout_seconds (1 s)" in line
    assert result.states == []


def test_a_kept_alive_connection_sends_and_reads_with_no_socket_timeout():
    # A socket with a timeout costs a poll() before every send and read; the Watch's
    # deadline bounds the request instead.
    connections = Connections(threading.Event())
    sender = Transport(
        auth=None,
        timeout_seconds=10,
        sleep_seconds=0,
        retry=RetryPolicy(max_retries=0),
        verify=True,
        stop=threading.Event(),
        redactor=Redactor(),
        connections=connections,
    )
    try:
        with Server(nodelay=True) as server:
            for n in range(2):
                request = Request("POST", server.url(f"/k/{n}"), {}, b"{}")
                assert sender.send(request)[0].status_code == 200
            manager = connections.session.get_adapter(server.url("/")).poolmanager
            (key,) = manager.pools.keys()  # the one host's pool
            pool = manager.pools[key]
            kept = [conn for conn in pool.pool.queue if conn is not None]
            assert len(kept) == 1  # both requests went over it
            assert kept[0].sock.gettimeout() is None
    finally:
        connections.close()


# Stopping


class Run:
    """The target as a subprocess fed through a pipe; stdout and stderr go to files."""

    def __init__(self, config: dict, workdir: Path) -> None:
        cfg = write_config(config, workdir)
        self.out, self.err = workdir / "stdout", workdir / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*TARGET, "--config", str(cfg)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env=clean_env(PYTHONFAULTHANDLER="1"),
            )

    def send(self, text: str, *, close: bool = False) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()
        if close:
            self.proc.stdin.close()

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def states(self) -> list:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def wait_for_log(self, text: str, limit: float = 20.0) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if text in self.stderr:
                return True
            time.sleep(0.02)
        return False

    def signal_and_wait(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum`; the exit code, or a failure when the exit takes too long."""
        self.proc.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints where it hangs
            self.proc.wait(timeout=EXIT_WITHIN)
            pytest.fail(f"still running {EXIT_WITHIN}s after the signal:\n{self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_WITHIN)
        self.proc.stdin.close()  # the pipe's end here: left open, it is a leaked file


@pytest.fixture
def start(tmp_path):
    runs: list[Run] = []

    def run(config: dict) -> Run:
        runs.append(Run(config, tmp_path))
        return runs[-1]

    yield run
    for started in runs:
        started.kill()


def with_state(n: int) -> str:
    """SCHEMA, records 1..n of stream `s`, then a STATE that passes them."""
    state = {"type": "STATE", "value": {"done": n}}
    return items_input(n, "s") + json.dumps(state) + "\n"


def assert_stopped_with(run: Run, code: int, left: int) -> None:
    stderr = run.stderr
    assert code == 1, stderr
    assert f"stopped by SIGTERM: {left} records were not delivered" in stderr
    assert "Traceback" not in stderr
    assert run.states() == []  # no STATE passes a record that was in flight


@pytest.mark.parametrize("concurrency", [1, 2], ids=["inline", "workers"])
@pytest.mark.parametrize("behaviour", list(SLOW))
def test_a_stop_ends_a_request_a_slow_server_holds(start, behaviour, concurrency):
    with SlowServer(SLOW[behaviour]) as server:
        run = start({"url": server.url(), "timeout_seconds": 300, "max_concurrency": concurrency})
        run.send(with_state(1))
        assert server.wait_for_request(), run.stderr

        code = run.signal_and_wait()

    assert_stopped_with(run, code, 1)


def test_a_second_signal_exits_at_once(start):
    with SlowServer(silent) as server:
        run = start({"url": server.url(), "timeout_seconds": 300})
        run.send(with_state(1))
        assert server.wait_for_request(), run.stderr
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait_for_log("received SIGTERM: stopping"), run.stderr

        code = run.signal_and_wait()

    assert code == 128 + signal.SIGTERM, run.stderr
    assert "received SIGTERM again: exiting at once" in run.stderr
    assert run.states() == []


def busy(got):
    return 503, {"Retry-After": "30"}, "busy"


@pytest.mark.parametrize("server_kind", ["silent", "retry-wait"])
def test_a_stop_while_the_last_batch_is_sent_reports_what_was_not_delivered(start, server_kind):
    if server_kind == "silent":
        server = SlowServer(silent)
        config = {"url": server.url(), "timeout_seconds": 300}
    else:
        server = Server(busy)
        config = {"url": server.url("/s"), "max_retries": 3, "max_backoff_seconds": 30}
    with server:
        run = start({**config, "request_mode": "batch", "batch_size": 100})
        run.send(items_input(3, "s"), close=True)  # the end of input: the batch goes now
        assert _wait(lambda: _requests(server) >= 1), run.stderr

        code = run.signal_and_wait()

    assert_stopped_with(run, code, 3)


def _requests(server: Server | SlowServer) -> int:
    return server.requests if isinstance(server, SlowServer) else len(server.requests)


def _wait(predicate, limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
