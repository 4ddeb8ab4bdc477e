"""The run's session does per host what requests does per request, with the same outcome.

Proxy variables and NO_PROXY still decide where each host's requests go; the environment
is read once per host, and a plain request merges no cookie jars. The adapter names a
host's urllib3 pool once; a stream's headers are merged and checked once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests.adapters
import requests.models
import requests.sessions
from support.loopback import Server

from target_restapi.auth.credentials import AuthChain, BearerAuth
from target_restapi.delivery.deadline import WatchedAdapter
from target_restapi.delivery.retry import RetryPolicy
from target_restapi.delivery.transport import Connections, Request, Transport
from target_restapi.errors import DeliveryError
from target_restapi.output.redact import Redactor

PROXY_NAMES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")
ALL_PROXY_NAMES = (*PROXY_NAMES, "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@pytest.fixture
def connections() -> Iterator[Connections]:
    """The run's connections, for the transport below."""
    shared = Connections(threading.Event())
    yield shared
    shared.close()


@pytest.fixture
def transport(connections) -> Iterator[Transport]:
    """A stream's transport, bearer auth, no retries."""
    sender = Transport(
        auth=AuthChain(BearerAuth("t0k3n")),
        timeout_seconds=10,
        sleep_seconds=0,
        retry=RetryPolicy(max_retries=0),
        verify=True,
        stop=threading.Event(),
        redactor=Redactor(),
        connections=connections,
    )
    yield sender
    sender.close()


@pytest.fixture
def no_proxies(monkeypatch) -> None:
    """No proxy variable set: requests go straight to each host."""
    for name in ALL_PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)


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


def post(
    transport: Transport,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b'{"id": 1}',
) -> int:
    """Send a small JSON body; the answer's status."""
    headers = headers or {"Content-Type": "application/json"}
    response, _, _ = transport.send(Request("POST", url, headers, body))
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


def test_each_hosts_pool_is_named_once_and_each_host_keeps_its_own(
    transport, connections, no_proxies, monkeypatch
):
    named: list[str] = []
    original = requests.adapters._urllib3_request_context

    def counted(request, *args):
        named.append(request.url)
        return original(request, *args)

    monkeypatch.setattr(requests.adapters, "_urllib3_request_context", counted)
    with Server(nodelay=True) as server:
        for n in range(5):  # interleaved: each host keeps its own pool
            assert post(transport, server.url(f"/a/{n}")) == 200
            assert post(transport, server.url(f"/b/{n}", host="localhost")) == 200
        adapter = connections.session.get_adapter(server.url("/"))
        pools = adapter.poolmanager.pools  # it refuses plain iteration: keys() it is
        hosts = {key.key_host for key in pools.keys()}  # noqa: SIM118

    assert len(named) == 2  # once per host, not once per request
    assert hosts == {"127.0.0.1", "localhost"}
    assert [got.path for got in server.requests] == [
        path for n in range(5) for path in (f"/a/{n}", f"/b/{n}")
    ]


def test_a_pool_urllib3_closed_is_never_used_again(transport, connections, no_proxies):
    with Server(nodelay=True) as server:
        assert post(transport, server.url("/before")) == 200
        # What urllib3 does to the least recently used pool when it holds too many.
        connections.session.get_adapter(server.url("/")).poolmanager.clear()
        assert post(transport, server.url("/after")) == 200

    assert [got.path for got in server.requests] == ["/before", "/after"]


def test_tls_verification_and_proxies_still_pick_the_pool():
    adapter = WatchedAdapter()
    secure = requests.Request("POST", "https://127.0.0.1:1/x").prepare()
    verified = adapter.get_connection_with_tls_context(secure, True)
    unverified = adapter.get_connection_with_tls_context(secure, False)
    assert verified is not unverified
    assert (verified.cert_reqs, unverified.cert_reqs) == ("CERT_REQUIRED", "CERT_NONE")
    assert adapter.get_connection_with_tls_context(secure, True) is verified

    plain = requests.Request("POST", "http://127.0.0.1:1/x").prepare()
    via = adapter.get_connection_with_tls_context(plain, True, {"http": "http://proxy.test:3128"})
    assert via.proxy is not None and via.proxy.host == "proxy.test"
    assert adapter.request_url(plain, {"http": "http://proxy.test:3128"}) == "http://127.0.0.1:1/x"
    assert adapter.get_connection_with_tls_context(plain, True).proxy is None
    assert adapter.request_url(plain, {}) == "/x"
    adapter.close()


def test_a_streams_headers_are_checked_once_and_each_request_keeps_its_own(transport, monkeypatch):
    checked: list[tuple[str, str]] = []
    original = requests.models.check_header_validity
    monkeypatch.setattr(
        requests.models,
        "check_header_validity",
        lambda header: checked.append(header) or original(header),
    )
    with Server(nodelay=True) as server:
        for n in range(3):  # the same headers, bodies of other lengths
            assert post(transport, server.url(f"/same/{n}"), body=b"x" * (n + 1)) == 200
        for key in ("k0", "k1"):  # a header filled per record
            headers = {"Content-Type": "application/json", "Key": key}
            assert post(transport, server.url(f"/{key}"), headers) == 200
        for _ in range(2):  # a bad header is refused every time, not only the first
            with pytest.raises(DeliveryError, match="could not be sent"):
                post(transport, server.url("/bad"), {"Key": "a\r\nInjected: 1"})

    names = [name for name, _ in checked]
    assert names.count("Content-Type") == 3  # one header set, then two more
    got = server.requests
    assert [g.path for g in got] == ["/same/0", "/same/1", "/same/2", "/k0", "/k1"]
    assert [g.headers["content-length"] for g in got[:3]] == ["1", "2", "3"]
    assert [g.headers.get("key") for g in got] == [None, None, None, "k0", "k1"]
    assert all(g.headers["authorization"] == "Bearer t0k3n" for g in got)
    assert all(g.headers["user-agent"].startswith("python-requests/") for g in got)
