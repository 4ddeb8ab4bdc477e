"""Fixtures shared by every test folder; the helpers they use live in tests/support/."""

from __future__ import annotations

import os
import re
import ssl

import pytest
from hypothesis import settings
from pytest_httpserver import HTTPServer
from support.loopback import Server
from support.run import LiveTarget, Recorder

# Property tests run a fixed sequence of cases, so a run's verdict never depends on chance;
# HYPOTHESIS_RANDOM=1 explores new cases (and saves any failure it finds for the next run).
settings.register_profile(
    "suite", deadline=None, derandomize=not os.environ.get("HYPOTHESIS_RANDOM"), print_blob=True
)
settings.load_profile("suite")

# singer_sdk.testing.pytest_plugin is registered by its entry point ("singer_testing");
# naming it again in pytest_plugins would make pluggy refuse a second registration.


@pytest.fixture
def live_target(tmp_path):
    """Start a LiveTarget with `live_target(config)`; it is killed after the test."""
    started: list[LiveTarget] = []

    def start(config: dict) -> LiveTarget:
        target = LiveTarget(config, tmp_path)
        started.append(target)
        return target

    yield start
    for target in started:
        target.kill()


@pytest.fixture(scope="session")
def make_httpserver():
    """pytest-httpserver's session server, threaded: a client that never finishes a request
    (a killed or stopped target) must not hold up every later test's requests."""
    server = HTTPServer(host=HTTPServer.DEFAULT_LISTEN_HOST, port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def recorder(httpserver) -> Recorder:
    """A Recorder answering every request to the `httpserver` fixture's server."""
    rec = Recorder()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(rec)
    return rec


@pytest.fixture
def serve():
    """`serve(answer=None, host=..., tls=None)` starts a Server, closed after the test."""
    started: list[Server] = []

    def start(answer=None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        server = Server(answer, host=host, tls=tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def threaded():
    """A loopback server answering concurrent requests on their own threads, and its Recorder."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    recorder = Recorder()
    server.expect_request(re.compile(".*")).respond_with_handler(recorder)
    yield server, recorder
    server.clear()
    server.stop()
