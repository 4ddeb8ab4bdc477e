"""client_cert and client_key: mutual TLS with a server that requires a client certificate.

Certificates come from trustme; the server verifies the client's against the same CA,
so a request that arrives at all proves the certificate was presented.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from support.loopback import Server, items_input
from support.oauth import OAuthApi, oauth_config
from support.run import DEBUG_ENV, clean_env, run_target

CLIENT = "client.example"


class Pki:
    """A CA, the server's certificate for localhost, and a client certificate."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("localhost")
        self.client = self.ca.issue_cert(CLIENT)
        self.ca_pem = str(folder / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_pem)
        self.cert_text = self.client.cert_chain_pems[0].bytes().decode()
        self.key_text = self.client.private_key_pem.bytes().decode()
        self.cert_path = folder / "client-cert.pem"
        self.key_path = folder / "client-key.pem"
        self.cert_path.write_text(self.cert_text)
        self.key_path.write_text(self.key_text)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        self.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        return context


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path)


def presented(got) -> bool:
    return ("DNS", CLIENT) in (got.peer or {}).get("subjectAltName", ())


def run(pki: Pki, tmp_path: Path, settings: dict, server: Server, env: dict | None = None):
    config = {"url": server.url("/in", host="localhost"), "ca_bundle": pki.ca_pem, **settings}
    return run_target(config, items_input(2), tmp_path, env=env)


def cert_settings(pki: Pki, form: str) -> dict:
    if form == "paths":
        return {"client_cert": str(pki.cert_path), "client_key": str(pki.key_path)}
    if form == "text":
        return {"client_cert": pki.cert_text, "client_key": pki.key_text}
    if form == "combined-text":
        return {"client_cert": pki.key_text + pki.cert_text}
    if form == "combined-path":
        pki.cert_path.write_text(pki.key_text + pki.cert_text)
        return {"client_cert": str(pki.cert_path)}
    assert form == "escaped-text"  # PEM pasted into one line of an environment variable
    return {
        "client_cert": pki.cert_text.replace("\n", "\\n"),
        "client_key": pki.key_text.replace("\n", "\\n"),
    }


FORMS = ["paths", "text", "combined-text", "combined-path", "escaped-text"]


@pytest.mark.parametrize("form", FORMS)
def test_client_certificate_is_presented(pki, tmp_path, form):
    with Server(tls=pki.server_context()) as server:
        result = run(pki, tmp_path, cert_settings(pki, form), server)

    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 2
    assert all(presented(got) for got in server.requests)


def test_without_a_client_certificate_the_server_refuses(pki, tmp_path):
    with Server(tls=pki.server_context()) as server:
        result = run(pki, tmp_path, {"max_retries": 0}, server)

    assert result.returncode != 0
    assert "could not be sent" in result.stderr
    assert server.requests == []


def test_client_certificate_with_bearer_auth(pki, tmp_path):
    settings = {"auth_type": "bearer", "bearer_token": "tok-Mt1-secret"}
    with Server(tls=pki.server_context()) as server:
        result = run(pki, tmp_path, {**settings, **cert_settings(pki, "text")}, server)

    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 2
    assert all(presented(got) for got in server.requests)
    assert {got.headers["authorization"] for got in server.requests} == {"Bearer tok-Mt1-secret"}


def test_client_certificate_is_presented_to_the_oauth2_token_endpoint_too(pki, tmp_path):
    api = OAuthApi()
    with Server(api, tls=pki.server_context()) as server:
        config = {
            **oauth_config(server),
            "url": server.url("/api/items/#{id}", host="localhost"),
            "oauth2_token_url": server.url("/token", host="localhost"),
            "ca_bundle": pki.ca_pem,
            **cert_settings(pki, "text"),
        }
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert api.statuses == [200, 200]
    assert [presented(got) for got in server.requests] == [True] * 3


def test_key_text_never_logged_and_its_files_removed(pki, tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    env = clean_env(**DEBUG_ENV, TMPDIR=str(temp))
    with Server(tls=pki.server_context()) as server:
        result = run(pki, tmp_path, cert_settings(pki, "text"), server, env=env)

    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr
    key_lines = [line for line in pki.key_text.splitlines() if not line.startswith("-----")]
    for line in key_lines:
        assert line not in result.stderr + result.stdout
    assert [p.name for p in temp.iterdir() if p.name.startswith("target-restapi")] == []


def encrypted_key(pki: Pki) -> str:
    key = serialization.load_pem_private_key(pki.key_text.encode(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


BAD = {
    "other-key": (
        lambda pki: {"client_key": pki.ca.issue_cert("x").private_key_pem.bytes().decode()}
    ),
    "no-file": (lambda pki: {"client_cert": "/no/such/cert.pem"}),
    "encrypted": (lambda pki: {"client_key": encrypted_key(pki)}),
    "not-pem": (lambda pki: {"client_key": "-----BEGIN PRIVATE KEY-----\nnope\n"}),
    "key-only": (lambda pki: {"client_cert": None}),
    "cert-without-key": (lambda pki: {"client_key": None}),
}
NAMES = {
    "other-key": ["client_key", "does not belong"],
    "no-file": ["client_cert", "readable file"],
    "encrypted": ["client_key", "encrypted"],
    "not-pem": ["client_key", "no readable PEM private key"],
    "key-only": ["client_key", "client_cert"],
    "cert-without-key": ["client_cert", "no readable PEM private key"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_client_certificates_are_refused_at_start(pki, tmp_path, case):
    settings = {**cert_settings(pki, "text"), **BAD[case](pki)}
    settings = {k: v for k, v in settings.items() if v is not None}
    with Server(tls=pki.server_context()) as server:
        result = run(pki, tmp_path, settings, server)

    assert result.returncode != 0
    for text in NAMES[case]:
        assert text in result.stderr
    assert server.requests == []
    assert "Traceback" not in result.stderr
