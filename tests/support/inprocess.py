"""Run the target's command line in this process: as the CLI would, at a fraction of the cost.

A subprocess run pays ~1 s of interpreter start and imports; an in-process run costs a few
tens of milliseconds, which is what lets a property test do hundreds of end-to-end runs.

`run_inprocess(config, data, folder)` calls the click command that `target-restapi`
runs (`--config FILE --input FILE`, `standalone_mode=False`) and gives back what a
subprocess would show: the exit code, stdout (STATE lines), stderr (the log), and the
traceback of any exception that escaped, in the main thread or another one.

Each run leaves the process as it found it: the root logger's handlers and level, the
filters the target's Redactor attached, the metrics logger's level, `sys.excepthook`,
`threading.excepthook`, warning capture, SIGINT/SIGTERM handlers, and the environment
(TARGET_RESTAPI_*, LOGLEVEL and SINGER_SDK_LOG_CONFIG are hidden during the run).
Threads the run started and left running are reported in `Run.leaked_threads`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from singer_sdk.metrics import METRICS_LOGGER_NAME

from target_restapi.target import TargetRestApi

HIDDEN_ENV_PREFIXES = ("TARGET_RESTAPI_", "LOGLEVEL", "SINGER_SDK_LOG_CONFIG")
THREAD_JOIN_SECONDS = 10  # a guard against a thread that never ends, not a speed check
TRACEBACK_MARK = "Traceback (most recent call last)"


@dataclass
class Run:
    """What one run showed, as a subprocess run would show it."""

    exit_code: int
    stdout: str
    stderr: str  # everything logged, formatted by the SDK's console handler
    escaped: list[str] = field(default_factory=list)  # formatted uncaught exceptions
    leaked_threads: list[str] = field(default_factory=list)

    @property
    def states(self) -> list:
        """Each stdout line as JSON (numbers with a fraction as Decimal)."""
        return [json.loads(line, parse_float=Decimal) for line in self.stdout.splitlines()]

    @property
    def traceback(self) -> str | None:
        """An uncaught exception, or a traceback the target logged; None when neither."""
        if self.escaped:
            return "\n".join(self.escaped)
        if TRACEBACK_MARK in self.stderr:
            return self.stderr
        return None

    @property
    def summary(self) -> dict | None:
        """The run summary the target logs as one JSON line at its end, if any."""
        found = None
        for line in self.stderr.splitlines():
            start = line.find('{"summary": ')
            if start >= 0:
                found = json.loads(line[start:])["summary"]
        return found

    @property
    def errors(self) -> list[str]:
        """The log lines of level ERROR."""
        return [line for line in self.stderr.splitlines() if "| ERROR " in line]


def run_inprocess(config: dict, data: bytes | str, folder: Path) -> Run:
    """Run `target-restapi --config <folder>/config.json --input <folder>/input.singer`."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config))
    input_path = folder / "input.singer"
    input_path.write_bytes(data.encode() if isinstance(data, str) else data)
    args = ["--config", str(config_path), "--input", str(input_path)]
    stdout, stderr = io.StringIO(), io.StringIO()
    escaped: list[str] = []
    before = set(threading.enumerate())
    with _isolated(escaped), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            # `cli` builds the command and adds the SDK's console handler on sys.stderr.
            returned = TargetRestApi.cli.main(
                args=args, prog_name=TargetRestApi.name, standalone_mode=False
            )
            exit_code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            exit_code = _exit_code(exc.code)
        except Exception:  # what the CLI would print as a traceback
            escaped.append(traceback.format_exc())
            exit_code = 1
    leaked = _leaked_threads(before)
    return Run(exit_code, stdout.getvalue(), stderr.getvalue(), escaped, leaked)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@contextlib.contextmanager
def _isolated(escaped: list[str]) -> Iterator[None]:
    """Undo, after the run, every process-wide change the SDK and the target make."""
    root = logging.getLogger()
    metrics = logging.getLogger(METRICS_LOGGER_NAME)
    plugin = logging.getLogger(TargetRestApi.name)
    levels = (root.level, metrics.level, plugin.level)
    root_handlers = root.handlers[:]
    filters = {handler: handler.filters[:] for handler in _all_handlers()}
    hooks = (sys.excepthook, threading.excepthook)
    signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hidden = {n: v for n, v in os.environ.items() if n.startswith(HIDDEN_ENV_PREFIXES)}

    def thread_hook(hook_args: threading.ExceptHookArgs) -> None:
        escaped.append(
            f"in thread {hook_args.thread.name if hook_args.thread else '?'}:\n"
            + "".join(
                traceback.format_exception(
                    hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback
                )
            )
        )

    for name in hidden:
        del os.environ[name]
    root.handlers = []  # the run's log goes to its own stderr only, not to pytest's capture
    threading.excepthook = thread_hook
    try:
        with warnings.catch_warnings():
            yield
    finally:
        logging.captureWarnings(False)
        for handler in root.handlers:
            handler.close()
        root.handlers = root_handlers
        for handler in _all_handlers():
            handler.filters[:] = filters.get(handler, [])
        root.setLevel(levels[0])
        metrics.setLevel(levels[1])
        plugin.setLevel(levels[2])
        sys.excepthook, threading.excepthook = hooks
        for sig, handler in signals.items():
            signal.signal(sig, handler)
        os.environ.update(hidden)


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]


def _leaked_threads(before: set[threading.Thread]) -> list[str]:
    """Threads the run started that do not end; a loopback server's own are not its."""
    deadline = time.monotonic() + THREAD_JOIN_SECONDS
    leaked = []
    for thread in threading.enumerate():
        if thread in before or thread.name.endswith("(process_request_thread)"):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaked.append(thread.name)
    return leaked
