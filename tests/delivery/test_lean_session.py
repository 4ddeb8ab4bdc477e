"""The run's session does per host what requests does per request, with the same outcome.

Proxy variables and NO_PROXY still decide where each host's requests go; the environment
is read once per host, and a plain request merges no cookie jars.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests.sessions
from support.loopback import Server

from target_restapi.auth.credentials import AuthChain, BearerAuth
from target_restapi.delivery.retry import RetryPolicy
from target_restapi.delivery.transport import Request, Transport
from target_restapi.output.redact import Redactor

PROXY_NAMES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def transport() -> Iterator[Transport]:
    """A stream's transport over connections of its own, bearer auth, no retries."""
    sender = Transport(
        auth=AuthChain(BearerAuth("t0k3n")),
        timeout_seconds=10,
        sleep_seconds=0,
        retry=RetryPolicy(max_retries=0),
        verify=True,
        stop=threading.Event(),
        redactor=Redactor(),
    )
    yield sender
    sender.close()


@pytest.fixture
def proxied(monkeypatch) -> Iterator[Server]:
    """A loopback forward proxy (it answers itself) in http_proxy; NO_PROXY exempts localhost."""
    with Server(nodelay=True) as proxy:
        for name in PROXY_NAMES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy.url(""))
        monkeypatch.setenv("no_proxy", "localhost")
        monkeypatch.delenv("NO_PROXY", raising=False)
        yield proxy


def post(transport: Transport, url: str) -> int:
    """Send a small JSON body; the answer's status."""
    headers = {"Content-Type": "application/json"}
    response, _, _ = transport.send(Request("POST", url, headers, b'{"id": 1}'))
    return response.status_code


def test_proxy_variables_and_no_proxy_still_decide_each_host(transport, proxied):
    with Server(nodelay=True) as server:
        for n in range(3):  # interleaved: each host keeps its own decision
            assert post(transport, server.url(f"/via/{n}")) == 200
            assert post(transport, server.url(f"/direct/{n}", host="localhost")) == 200

    assert [got.path for got in proxied.requests] == [server.url(f"/via/{n}") for n in range(3)]
    assert [got.path for got in server.requests] == [f"/direct/{n}" for n in range(3)]
    assert all(got.headers["authorization"] == "Bearer t0k3n" for got in proxied.requests)


def test_the_environment_is_read_once_per_host(transport, proxied, monkeypatch):
    reads: list[str] = []
    original = requests.sessions.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return original(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted)
    with Server(nodelay=True) as server:
        for n in range(5):
            post(transport, server.url(f"/a/{n}", host="localhost"))
            post(transport, server.url(f"/b/{n}"))

    assert len(reads) == 2
    assert len(server.requests) == 5 and len(proxied.requests) == 5


def test_a_plain_request_merges_no_cookie_jars_and_is_sent_as_requests_sends_it(
    transport, monkeypatch
):
    merges: list[object] = []
    original = requests.sessions.merge_cookies
    monkeypatch.setattr(
        requests.sessions, "merge_cookies", lambda *args: merges.append(args) or original(*args)
    )
    with Server(nodelay=True) as server:
        post(transport, server.url("/t/%2E%2E/users?x=a%20b"))

    assert merges == []
    got = server.requests[0]
    assert got.path == "/t/%2E%2E/users?x=a%20b"  # the dot segment stays encoded
    assert got.body == b'{"id": 1}'
    assert got.headers["content-length"] == "9"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["authorization"] == "Bearer t0k3n"
    assert got.headers["user-agent"].startswith("python-requests/")
    assert "cookie" not in got.headers
