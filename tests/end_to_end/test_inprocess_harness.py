"""The in-process harness (tests/support/inprocess.py): runs leave the process as they found it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from support.inprocess import run_inprocess
from support.loopback import Server, items_input

from target_restapi.target import TargetRestApi


def _process_state() -> tuple:
    root = logging.getLogger()
    handlers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    filters = [
        (handler, list(handler.filters))
        for logger in handlers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
    ]
    return (
        list(root.handlers),
        root.level,
        filters,
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
        sys.excepthook,
        threading.excepthook,
    )


def test_runs_are_independent_and_leave_the_process_as_it_was(tmp_path):
    before = _process_state()
    with Server(nodelay=True) as server:
        config = {"url": server.url("/items"), "password": "s3cret-value", "username": "u"}
        first = run_inprocess(config, items_input(3), tmp_path / "first")
        second = run_inprocess(config, items_input(3), tmp_path / "second")

    assert _process_state() == before
    for run in (first, second):
        assert run.exit_code == 0, run.stderr
        assert run.traceback is None
        assert not run.leaked_threads
        assert run.summary["total"]["delivered"] == 3
    # Each run's log holds its own lines only, once.
    assert second.stderr.count("summary: ") == 1
    assert len(server.requests) == 6


def test_an_exit_code_and_the_error_line_come_back(tmp_path):
    run = run_inprocess({"url": "http://127.0.0.1:9/x"}, "not json\n", tmp_path)

    assert run.exit_code == 1
    assert run.traceback is None
    assert [line for line in run.errors if "input line 1:" in line]


def test_an_exception_that_escapes_is_reported_with_its_traceback(tmp_path, monkeypatch):
    def broken(cls, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(TargetRestApi, "invoke", classmethod(broken))
    run = run_inprocess({"url": "http://127.0.0.1:9/x"}, "", tmp_path)

    assert run.exit_code == 1
    assert run.traceback is not None
    assert "RuntimeError: boom" in run.traceback


def test_settings_from_the_environment_are_hidden_during_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    monkeypatch.setenv("TARGET_RESTAPI_LOGLEVEL", "DEBUG")
    with Server(nodelay=True) as server:
        run = run_inprocess({"url": server.url("/items")}, items_input(1), tmp_path)

    assert run.exit_code == 0, run.stderr
    assert "| DEBUG " not in run.stderr
    assert run.stderr.count("| INFO ") > 0
    assert os.environ["LOGLEVEL"] == "DEBUG"
