"""Run the target (in this process or as a subprocess) and record what a loopback server saw."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from werkzeug import Request, Response

from support.inprocess import run_inprocess

DATA_FILES = Path(__file__).parent.parent / "data_files"
RUN_TIMEOUT = 60  # a guard against a hung run, never an assertion about speed
TARGET = [sys.executable, "-m", "target_restapi"]

# Logging at DEBUG, for tests that look for secrets in everything the target can log.
DEBUG_ENV = {"TARGET_RESTAPI_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}

# Retrying error answers is a feature of its own (with backoff waits); tests about what
# happens once an answer is final turn it off so that one error answer is the final one.
NO_RETRY = {"max_retries": 0}


def data_file(name: str) -> Path:
    """Path of an input file under tests/data_files."""
    path = DATA_FILES / name
    assert path.is_file(), f"missing test input {path}"
    return path


def error_lines(stderr: str, marker: str) -> list[str]:
    """The lines of a run's log that hold `marker`."""
    return [line for line in stderr.splitlines() if marker in line]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without TARGET_RESTAPI_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_RESTAPI_")}
    env.pop("LOGLEVEL", None)
    env.update(extra)
    return env


def parse_states(stdout: str) -> list:
    """Every stdout line as JSON; numbers with a fraction become Decimal (exact)."""
    return [json.loads(line, parse_float=Decimal) for line in stdout.splitlines() if line.strip()]


@dataclass
class Result:
    returncode: int
    states: list
    stdout: str
    stderr: str


def write_config(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _input_bytes(input: bytes | str | Path) -> bytes:
    if isinstance(input, Path):
        return input.read_bytes()
    if isinstance(input, str):
        return input.encode()
    return input


def run_target(
    config: dict,
    input: bytes | str | Path,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    *,
    subprocess_run: bool = False,
) -> Result:
    """Run the target with `config` and `input`; give back its exit code, STATE lines and log.

    By default the target runs in this process (tests/support/inprocess.py): the same CLI,
    a fraction of the cost. It runs as `python -m target_restapi` with `input` on stdin when
    the test is about the process itself: an `env` (environment variables), or
    `subprocess_run=True` (signals, stdin plumbing, interpreter-level behaviour).
    """
    if env is None and not subprocess_run:
        # The config and input files go outside tmp_path, which tests list as the run's output.
        with tempfile.TemporaryDirectory(prefix="run-target-") as folder:
            run = run_inprocess(config, _input_bytes(input), Path(folder))
        assert not run.leaked_threads, f"threads left running: {run.leaked_threads}"
        # What a subprocess would have printed: an escaped exception ends its stderr.
        stderr = run.stderr + "".join(run.escaped)
        return _result(run.exit_code, run.stdout, stderr)
    cfg_path = write_config(config, tmp_path)
    proc = subprocess.run(
        [*TARGET, "--config", str(cfg_path)],
        input=_input_bytes(input),
        capture_output=True,
        env=env if env is not None else clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return _result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _result(returncode: int, stdout: str, stderr: str) -> Result:
    states = parse_states(stdout) if returncode == 0 else _states_or_raw(stdout)
    return Result(returncode, states, stdout, stderr)


def _states_or_raw(stdout: str) -> list:
    try:
        return parse_states(stdout)
    except ValueError:
        return [stdout]


class LiveTarget:
    """The target as a running process, fed line by line, its stdout read as it comes."""

    def __init__(self, config: dict, tmp_path: Path) -> None:
        cfg_path = write_config(config, tmp_path)
        self.proc = subprocess.Popen(
            [*TARGET, "--config", str(cfg_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(PYTHONFAULTHANDLER="1"),  # SIGABRT prints every thread's stack
        )
        self.lines: list[str] = []  # stdout lines read so far, in order
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._stdout_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._stdout_reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        for line in lines:
            self.proc.stdin.write(line.rstrip("\n").encode() + b"\n")
        self.proc.stdin.flush()

    def next_line(self) -> str:
        """The next stdout line; fails (instead of hanging) if none comes or stdout ends."""
        try:
            line = self._queue.get(timeout=RUN_TIMEOUT)
        except queue.Empty:
            pytest.fail("the target printed nothing while its input was still open")
        assert line is not None, f"stdout closed early; stderr:\n{self.stderr}"
        return line

    def finish(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.wait()

    def wait(self) -> int:
        """The exit code; a target that does not exit fails the test, showing where it hangs."""
        try:
            return self.proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=RUN_TIMEOUT)
            self._stderr_reader.join(timeout=RUN_TIMEOUT)
            pytest.fail(f"the target did not exit within {RUN_TIMEOUT}s; stderr:\n{self.stderr}")

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=RUN_TIMEOUT)
        # Left open, each pipe is a leaked file; the readers end at the exit's end of file.
        self._stdout_reader.join(timeout=RUN_TIMEOUT)
        self._stderr_reader.join(timeout=RUN_TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    raw_uri: str  # the request target exactly as sent, percent-escapes intact
    path: str  # decoded path
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival, in the server thread

    def json(self):
        return json.loads(self.body, parse_float=Decimal)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Recorder:
    """Catch-all handler: records each request; `respond` decides the answer."""

    requests: list[Seen] = field(default_factory=list)
    respond: object = None  # callable(Seen) -> Response | None; None answers 200 "ok"
    on_request: object = None  # callable(Seen) -> None, run before answering

    def __call__(self, request: Request) -> Response:
        at = time.monotonic()
        environ = request.environ
        raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
        seen = Seen(
            method=request.method,
            raw_uri=raw_uri,
            path=request.path,
            headers=dict(request.headers.items()),
            body=request.get_data(),
            at=at,
        )
        self.requests.append(seen)
        if self.on_request is not None:
            self.on_request(seen)
        if self.respond is not None:
            answer = self.respond(seen)
            if answer is not None:
                return answer
        return Response("ok", status=200)

    @property
    def bodies(self) -> list:
        return [seen.json() for seen in self.requests]


def records_of(seen: Seen) -> list:
    """The records a JSON request carried: its array, or its one object."""
    body = seen.json()
    return body if isinstance(body, list) else [body]


def sent_ids(recorder: Recorder) -> list[list]:
    """Ids per request, in the order the server received them."""
    return [[r["id"] for r in records_of(seen)] for seen in recorder.requests]


def failing(ids: set, status: int = 500, body: str = "database on fire"):
    """A `Recorder.respond` answering `status` to every request that carries one of `ids`."""

    def respond(seen: Seen) -> Response | None:
        if seen.body and any(r["id"] in ids for r in records_of(seen)):
            return Response(body, status=status)
        return None

    return respond
