"""Security: what records can do to requests, where credentials go, and TLS verification.

Real servers on loopback only: the `recorder` (pytest-httpserver) for plain checks, and
stdlib ThreadingHTTPServers for redirects across hosts, echoing error answers and TLS.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass

import pytest
import trustme
from support.loopback import Server
from support.run import DEBUG_ENV, NO_RETRY, clean_env, run_target
from support.singer_lines import USERS, singer

ENV_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

# Records cannot break out of their URL segment or add headers


def test_url_values_stay_inside_their_segment(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/items/#{id}") + "?t=#{token}"}
    result = run_target(config, singer({"id": "../admin?x=1", "token": "a&b=c#d"}), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.raw_uri for seen in recorder.requests] == [
        "/items/..%2Fadmin%3Fx%3D1?t=a%26b%3Dc%23d"
    ]


LINE_BREAKS = [("\r\n", True), ("\r\n", False), ("\n", False), ("\r", True)]


@pytest.mark.parametrize(
    ("brk", "fail_on_error"),
    LINE_BREAKS,
    ids=["CRLF-fail", "CRLF-go-on", "LF-go-on", "CR-fail"],
)
def test_line_break_in_a_header_value_from_a_record_is_refused_never_sent(
    recorder, httpserver, tmp_path, brk, fail_on_error
):
    config = {
        "url": httpserver.url_for("/users"),
        "headers": {"X-Token": "#{token}"},
        "fail_on_error": fail_on_error,
    }
    records = [
        {"id": "1", "token": "fine"},
        {"id": "2", "token": f"evil{brk}X-Injected: yes"},
        {"id": "3", "token": "fine too"},
    ]
    result = run_target(config, singer(*records), tmp_path)

    sent = [seen.json()["id"] for seen in recorder.requests]
    assert all(seen.header("X-Injected") is None for seen in recorder.requests)
    assert "line break" in result.stderr
    if fail_on_error:
        assert result.returncode != 0
        assert sent == ["1"]
    else:
        assert result.returncode == 0, result.stderr
        assert sent == ["1", "3"]


# Redirects to another host never carry credentials

AUTHS = {
    "basic": {"auth_type": "basic", "username": "alice", "password": "pw-Redirect-1"},
    "header": {"headers": {"Authorization": "Bearer tok-Redirect-2", "Cookie": "sid=ck-Redir-3"}},
}


@pytest.mark.parametrize("auth", list(AUTHS))
@pytest.mark.parametrize("other_host", ["127.0.0.2", "localhost"])
def test_redirect_to_another_host_carries_no_authorization(serve, tmp_path, auth, other_host):
    b = serve(host="127.0.0.2" if other_host == "127.0.0.2" else "127.0.0.1")
    a = serve(lambda got: (307, {"Location": b.url("/landing", host=other_host)}, "moved"))
    config = {"url": a.url("/users"), **AUTHS[auth], **NO_RETRY}

    result = run_target(config, USERS, tmp_path)

    assert a.requests[0].headers.get("authorization"), "A got no credentials"
    assert b.requests, f"the redirect was not followed:\n{result.stderr}"
    for got in b.requests:
        assert "authorization" not in got.headers
        assert "cookie" not in got.headers
    assert result.returncode == 0, result.stderr


# TLS: verified by default, against `ca_bundle` when given; `verify_tls: false` warns


@dataclass
class Tls:
    server: Server
    ca_pem: str
    url: str


def tls_env(**extra: str) -> dict[str, str]:
    """The environment without CA bundle overrides, so only the settings decide."""
    env = clean_env(**extra)
    for name in ENV_BUNDLES:
        if name not in extra:
            env.pop(name, None)
    return env


@pytest.fixture
def tls(serve, tmp_path) -> Tls:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server = serve(tls=context)
    return Tls(server, str(ca_pem), server.url("/users", host="localhost"))


def test_certificates_are_verified_by_default(tls, tmp_path):
    result = run_target({"url": tls.url, **NO_RETRY}, USERS, tmp_path, env=tls_env())

    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr.lower(), result.stderr
    assert tls.server.requests == []


def test_ca_bundle_verifies_the_server(tls, tmp_path):
    config = {"url": tls.url, "ca_bundle": tls.ca_pem, **NO_RETRY}

    result = run_target(config, USERS, tmp_path, env=tls_env())

    assert result.returncode == 0, result.stderr
    assert [json.loads(got.body)["id"] for got in tls.server.requests] == ["1", "2", "3"]


def test_verify_tls_false_connects_and_warns_at_start(tls, tmp_path):
    config = {"url": tls.url, "verify_tls": False, **NO_RETRY}

    result = run_target(config, USERS, tmp_path, env=tls_env(**DEBUG_ENV))

    assert result.returncode == 0, result.stderr
    assert len(tls.server.requests) == 3
    lines = result.stderr.splitlines()
    warnings = [i for i, line in enumerate(lines) if "WARNING" in line and "verify_tls" in line]
    first_request = next(i for i, line in enumerate(lines) if "Starting new HTTPS" in line)
    assert warnings, "no WARNING naming verify_tls was logged"
    assert warnings[0] < first_request


def test_missing_ca_bundle_file_is_refused_at_startup(tls, tmp_path):
    config = {"url": tls.url, "ca_bundle": str(tmp_path / "no-such-ca.pem")}

    result = run_target(config, USERS, tmp_path, env=tls_env())

    assert result.returncode != 0
    assert "ca_bundle" in result.stderr
    assert "Traceback" not in result.stderr
    assert tls.server.requests == []


ENV_OVERRIDES = [
    ("ca_bundle", "REQUESTS_CA_BUNDLE"),
    ("ca_bundle", "CURL_CA_BUNDLE"),
    ("verify_tls_false", "REQUESTS_CA_BUNDLE"),
]


@pytest.mark.parametrize(
    ("setting", "env_name"), ENV_OVERRIDES, ids=[f"{s}-{e}" for s, e in ENV_OVERRIDES]
)
def test_tls_settings_win_over_a_ca_bundle_from_the_environment(tls, tmp_path, env_name, setting):
    """REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are common in CI and company machines."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    settings = {"ca_bundle": tls.ca_pem} if setting == "ca_bundle" else {"verify_tls": False}
    config = {"url": tls.url, **settings, **NO_RETRY}

    result = run_target(config, USERS, tmp_path, env=tls_env(**{env_name: str(other_ca)}))

    assert result.returncode == 0, result.stderr[-800:]
    assert len(tls.server.requests) == 3
