"""A record must not change where a request goes.

Values fill only their own path segment or query value (dot segments included, on the
wire as a loopback server reads it), and placeholders in the scheme, host, port or
user-info are refused at start-up unless `allow_record_hosts` is true.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.loopback import Server
from support.run import NO_RETRY, run_target

from target_restapi.delivery.url_safety import DotSafeSession, host_placeholders
from target_restapi.templates import Template, render_url

DOTTY = st.sampled_from([".", "..", "...", "", "%2E", "%2e%2E", "/", "../..", "?", "#", "./."])
VALUES = st.one_of(DOTTY, st.text(st.characters(exclude_categories=("Cs",)), max_size=12))
PATH = "/tenants/#{tenant}/users/#{id}?next=#{next}"


@pytest.fixture(scope="module")
def server():
    with Server() as running:
        yield running


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tenant=VALUES, id=VALUES, next=VALUES)
def test_values_keep_their_segment_and_round_trip_on_the_wire(server, tenant, id, next):
    url = render_url(Template.parse(server.url(PATH)), {"tenant": tenant, "id": id, "next": next})
    with DotSafeSession() as session:
        session.put(url, timeout=30)

    raw = server.requests[-1].path  # the request target as the server read it
    path, _, query = raw.partition("?")
    segments = path.split("/")
    assert len(segments) == 5, raw
    assert segments[:2] == ["", "tenants"] and segments[3] == "users", raw
    assert [unquote(segments[2]), unquote(segments[4])] == [tenant, id]
    assert not {segments[2], segments[4]} & {".", ".."}, raw  # a server would walk the path
    name, _, value = query.partition("=")
    assert (name, unquote(value)) == ("next", next)


@pytest.mark.parametrize("value", [".", ".."])
def test_a_dot_value_is_sent_encoded(server, value):
    url = render_url(Template.parse(server.url("/tenants/#{t}/users/1")), {"t": value})
    with DotSafeSession() as session:
        session.put(url, timeout=30)

    assert server.requests[-1].path == "/tenants/" + "%2E" * len(value) + "/users/1"


def test_a_tenant_of_dot_dot_does_not_reach_the_parent_path(tmp_path):
    """The issue's case, end to end: bearer token and all, the request stays under /tenants."""
    schema = {"properties": {"tenant": {"type": "string"}, "id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]}]
    lines += [{"type": "RECORD", "stream": "users", "record": {"tenant": "..", "id": 1}}]
    with Server() as server:
        config = {
            "url": server.url("/tenants/#{tenant}/users/#{id}"),
            "method": "PUT",
            "auth_type": "bearer",
            "bearer_token": "tok-123456",
            **NO_RETRY,
        }
        result = run_target(config, "\n".join(map(json.dumps, lines)) + "\n", tmp_path)

    assert result.returncode == 0, result.stderr
    assert [got.path for got in server.requests] == ["/tenants/%2E%2E/users/1"]


# Placeholders in the scheme, user-info, host or port

LITERALS = st.text(st.sampled_from("abcxyz0189-"), min_size=1, max_size=6)
HEAD_PARTS = ("scheme", "userinfo", "host", "port")


@st.composite
def urls(draw):
    """A URL template with one placeholder in a drawn component, and that component."""
    where = draw(st.sampled_from([*HEAD_PARTS, "path", "query", "after_host"]))
    word = draw(LITERALS)
    field = "#{f}"
    scheme = field if where == "scheme" else "https"
    userinfo = f"{field}:pw@" if where == "userinfo" else draw(st.sampled_from(["", "u:p@"]))
    host = f"{word}{field}.example.com" if where == "host" else f"{word}.example.com"
    port = f":{field}" if where == "port" else draw(st.sampled_from(["", ":8443"]))
    path = f"/a/{field}/b" if where == "path" else f"/{word}"
    if where == "after_host":  # no slash: the value would run on into the host name
        return f"{scheme}://{userinfo}{host}{port}{field}", "host"
    query = f"?q={field}" if where == "query" else ""
    return f"{scheme}://{userinfo}{host}{port}{path}{query}", where


@settings(max_examples=300, deadline=None)
@given(urls())
def test_placeholders_are_found_exactly_in_the_host_part(case):
    url, where = case
    assert bool(host_placeholders(url)) == (where in HEAD_PARTS), url


@pytest.mark.parametrize(
    "url",
    [
        "#{scheme}://#{host}/x",
        "https://#{tenant}.example.com/x",
        "https://#{user}:pw@api.example.com/x",
        "https://api.example.com:#{port}/x",
        "https://api.example.com#{suffix}",
        "#{base_url}/users",
    ],
)
def test_record_hosts_are_refused_at_start_up_in_one_line(tmp_path, url):
    result = run_target({"url": url}, "", tmp_path)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "'url'" in errors[0] and "allow_record_hosts" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_stream_url_with_a_record_host_is_refused(tmp_path):
    config = {"url": "http://127.0.0.1:9/x", "streams": {"users": {"url": "http://#{h}/x"}}}

    result = run_target(config, "", tmp_path)

    assert result.returncode == 1
    assert "stream 'users'" in result.stderr and "allow_record_hosts" in result.stderr


@pytest.mark.parametrize("level", ["top", "stream"])
def test_allow_record_hosts_sends_there_and_warns_once(tmp_path, level):
    schema = {"properties": {"host": {"type": "string"}, "id": {"type": "integer"}}}
    with Server() as server:
        records = [{"host": host, "id": i} for i, host in enumerate(["127.0.0.1", "localhost"])]
        lines = [{"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]}]
        lines += [{"type": "RECORD", "stream": "users", "record": r} for r in records]
        url = {"url": f"http://#{{host}}:{server.port}/users/#{{id}}", "allow_record_hosts": True}
        config = url if level == "top" else {"url": server.url("/x"), "streams": {"users": url}}
        result = run_target(config, "\n".join(map(json.dumps, lines)) + "\n", tmp_path)

    assert result.returncode == 0, result.stderr
    got = [(r.headers["host"].partition(":")[0], r.path) for r in server.requests]
    assert got == [("127.0.0.1", "/users/0"), ("localhost", "/users/1")]
    warnings = [line for line in result.stderr.splitlines() if "allow_record_hosts" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]


@pytest.mark.parametrize("level", ["top", "stream"])
def test_allow_record_hosts_with_the_ssh_tunnel_is_refused(tmp_path, level):
    """Records could open forwards to any host behind the bastion: refused before login."""
    tunnel = {"enable": True, "host": "127.0.0.1", "port": 9, "username": "u", "password": "pw"}
    allow = {"allow_record_hosts": True}
    config = {"url": "http://127.0.0.1:9/x", "ssh_tunnel": tunnel}
    config |= allow if level == "top" else {"streams": {"users": allow}}

    result = run_target(config, "", tmp_path)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "ssh_tunnel" in errors[0] and "allow_record_hosts" in errors[0]
    assert "cannot connect" not in result.stderr  # refused before any SSH login
