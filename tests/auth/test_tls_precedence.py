"""TLS settings per level: the more specific level wins, and the warning says what is true.

A stream's `verify_tls` or `ca_bundle` beats the top level's; one level giving both
`ca_bundle` and `verify_tls: false` is refused.
"""

from __future__ import annotations

import itertools
import ssl

import pytest
import trustme
from support.loopback import Server
from support.run import NO_RETRY, clean_env, data_file, run_target

from target_restapi.errors import SettingsError
from target_restapi.settings.streams import check_all, tls_verify

USERS = data_file("users.singer")
ENV_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

# What one level may say: nothing, verify_tls either way, a bundle, or a bundle and verify_tls.
LEVELS = [
    {},
    {"verify_tls": True},
    {"verify_tls": False},
    {"ca_bundle": "ca.pem"},
    {"ca_bundle": "ca.pem", "verify_tls": True},
    {"ca_bundle": "ca.pem", "verify_tls": False},
]


def expected(top: dict, stream: dict) -> bool | str:
    """The rule, spelled out: the stream's bundle or false first, else the top level's."""
    if stream.get("ca_bundle"):
        return stream["ca_bundle"]
    if stream.get("verify_tls") is False:
        return False
    if top.get("ca_bundle"):
        return top["ca_bundle"]
    if stream.get("verify_tls") is True:
        return True
    return top.get("verify_tls", True)


@pytest.mark.parametrize(("top", "stream"), list(itertools.product(LEVELS, LEVELS)))
def test_the_more_specific_level_decides(tmp_path, monkeypatch, top, stream):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ca.pem").write_text("")  # only its existence is checked here
    config = {"url": "https://api.example.com/x", **top, "streams": {"users": stream}}
    contradictory = [
        level
        for level in (top, stream)
        if level.get("ca_bundle") and level.get("verify_tls") is False
    ]

    if contradictory:
        with pytest.raises(SettingsError, match=r"ca_bundle.*verify_tls"):
            check_all(config)
        return
    check_all(config)
    assert tls_verify(config, "users") == expected(top, stream)
    assert tls_verify(config, "other") == expected(top, {})


@pytest.fixture
def tls(tmp_path):
    """An HTTPS loopback server for `localhost`, and the PEM of the CA that signed it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    other_pem = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_pem))
    with Server(tls=context) as server:
        yield server, str(ca_pem), str(other_pem)


def tls_env() -> dict[str, str]:
    """The environment without CA bundle variables, so only the settings decide."""
    env = clean_env()
    for name in ENV_BUNDLES:
        env.pop(name, None)
    return env


def warnings_about_tls(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WARNING" in line and "NOT verified" in line]


def test_a_stream_verify_tls_false_beats_a_top_level_ca_bundle(tls, tmp_path):
    server, _, other_ca = tls
    url = server.url("/users", host="localhost")
    config = {"url": url, "ca_bundle": other_ca, "streams": {"users": {"verify_tls": False}}}

    result = run_target({**config, **NO_RETRY}, USERS, tmp_path, env=tls_env())

    assert result.returncode == 0, result.stderr[-800:]
    assert len(server.requests) == 5
    [warning] = warnings_about_tls(result.stderr)
    assert "stream 'users'" in warning and "top level" not in warning


def test_a_stream_ca_bundle_beats_a_top_level_verify_tls_false(tls, tmp_path):
    """The stream verifies with its bundle: a bundle of another CA fails the handshake."""
    server, _, other_ca = tls
    url = server.url("/users", host="localhost")
    config = {"url": url, "verify_tls": False, "streams": {"users": {"ca_bundle": other_ca}}}

    result = run_target({**config, **NO_RETRY}, USERS, tmp_path, env=tls_env())

    assert result.returncode == 1
    assert "certificate verify failed" in result.stderr.lower()
    assert server.requests == []
    [warning] = warnings_about_tls(result.stderr)
    assert "top level" in warning and "stream 'users'" not in warning


def test_no_warning_when_a_ca_bundle_verifies(tls, tmp_path):
    server, ca, _ = tls
    url = server.url("/users", host="localhost")
    config = {"url": url, "ca_bundle": ca, "streams": {"users": {"verify_tls": True}}}

    result = run_target({**config, **NO_RETRY}, USERS, tmp_path, env=tls_env())

    assert result.returncode == 0, result.stderr[-800:]
    assert warnings_about_tls(result.stderr) == []


@pytest.mark.parametrize("level", ["top", "stream"])
def test_ca_bundle_with_verify_tls_false_at_one_level_is_refused(tls, tmp_path, level):
    server, ca, _ = tls
    both = {"ca_bundle": ca, "verify_tls": False}
    url = {"url": server.url("/users", host="localhost")}
    config = {**url, **both} if level == "top" else {**url, "streams": {"users": both}}

    result = run_target(config, USERS, tmp_path, env=tls_env())

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "ca_bundle" in errors[0] and "verify_tls" in errors[0]
    assert warnings_about_tls(result.stderr) == []
    assert server.requests == []
