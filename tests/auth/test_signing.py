"""hmac_secret: a receiver checks each request's signature as webhook receivers do.

`X-Signature: sha256=<hex HMAC-SHA256 of the body bytes received>`, compressed bytes
when the body is gzipped; in every request mode, retries and with other auth.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json

import pytest
from support.loopback import Got, Server, items_input
from support.run import DEBUG_ENV, clean_env, run_target

SECRET = "hm-Sg5-signing-secret"


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verified(got: Got, header: str = "x-signature", secret: str = SECRET) -> bool:
    """What a webhook receiver does: compare in constant time."""
    return hmac.compare_digest(got.headers.get(header, ""), signature(got.body, secret))


def ids(got: Got) -> list[int]:
    """The record ids in a body (gzip undone), whichever request mode made it."""
    body = gzip.decompress(got.body) if got.headers.get("content-encoding") == "gzip" else got.body
    value = json.loads(body)
    return [item["id"] for item in value] if isinstance(value, list) else [value["id"]]


MODES = {
    "single": {"request_mode": "single"},
    "batch": {"request_mode": "batch", "batch_size": 2},
    "one": {"request_mode": "one"},  # the body is a spooled file
}


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("mode", list(MODES))
def test_every_request_carries_a_valid_signature(tmp_path, mode, compression):
    with Server() as server:
        config = {
            "url": server.url("/hook"),
            "hmac_secret": SECRET,
            "compression": compression,
            **MODES[mode],
        }
        result = run_target(config, items_input(5), tmp_path)

    assert result.returncode == 0, result.stderr
    assert server.requests
    assert all(verified(got) for got in server.requests)
    assert sorted(i for got in server.requests for i in ids(got)) == [1, 2, 3, 4, 5]
    encoding = "gzip" if compression == "gzip" else None
    assert [got.headers.get("content-encoding") for got in server.requests] == [encoding] * len(
        server.requests
    )


def test_signature_header_name_is_a_setting(tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/hook"),
            "hmac_secret": SECRET,
            "hmac_header": "X-Hub-Signature-256",
        }
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(i for got in server.requests for i in ids(got)) == [1, 2]
    assert all(verified(got, "x-hub-signature-256") for got in server.requests)
    assert all("x-signature" not in got.headers for got in server.requests)


def test_a_request_without_a_body_signs_the_empty_body(tmp_path):
    with Server() as server:
        config = {"url": server.url("/items/#{id}"), "method": "GET", "hmac_secret": SECRET}
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [got.body for got in server.requests] == [b"", b""]
    assert all(verified(got) for got in server.requests)


@pytest.mark.parametrize("mode", ["single", "one"])
def test_a_retried_request_is_signed_again_over_the_same_bytes(tmp_path, mode):
    answers = iter([(500, {}, "try again")])

    def answer(got: Got):
        return next(answers, (200, {}, "ok"))

    with Server(answer) as server:
        config = {
            "url": server.url("/hook"),
            "hmac_secret": SECRET,
            "compression": "gzip",
            "max_backoff_seconds": 0.05,
            **MODES[mode],
        }
        result = run_target(config, items_input(3), tmp_path)

    assert result.returncode == 0, result.stderr
    first, retry = server.requests[:2]
    assert retry.body == first.body
    assert verified(first)
    assert verified(retry)


def test_signing_keeps_the_credentials_of_other_settings(tmp_path):
    with Server() as server:
        url = server.url("/hook").replace("://", "://alice:pw-Url-1@")
        streams = {"b": {"auth_type": "bearer", "bearer_token": "tok-Sg-2-secret"}}
        config = {"url": url, "hmac_secret": SECRET, "streams": streams}
        lines = items_input(1) + items_input(1, stream="b")
        result = run_target(config, lines, tmp_path)

    assert result.returncode == 0, result.stderr
    url_auth, bearer = server.requests
    basic = base64.b64encode(b"alice:pw-Url-1").decode()
    assert url_auth.headers["authorization"] == f"Basic {basic}"
    assert bearer.headers["authorization"] == "Bearer tok-Sg-2-secret"
    assert verified(url_auth)
    assert verified(bearer)


def test_signing_secret_can_differ_per_stream(tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/hook"),
            "hmac_secret": SECRET,
            "streams": {"b": {"hmac_secret": "hm-Other-secret"}},
        }
        result = run_target(config, items_input(1) + items_input(1, stream="b"), tmp_path)

    assert result.returncode == 0, result.stderr
    a, b = server.requests
    assert verified(a)
    assert verified(b, secret="hm-Other-secret")


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_signing_secret_never_reaches_logs_or_error_files(tmp_path, fail_on_error):
    errors = tmp_path / "errors.jsonl"

    def echo(got: Got):
        return 400, {}, f"bad signature {json.dumps(got.headers)}"

    with Server(echo) as server:
        config = {
            "url": server.url("/hook"),
            "hmac_secret": SECRET,
            "fail_on_error": fail_on_error,
            "error_file_path": str(errors),
            "max_retries": 0,
        }
        result = run_target(config, items_input(2), tmp_path, env=clean_env(**DEBUG_ENV))

    written = result.stdout + result.stderr + (errors.read_text() if errors.exists() else "")
    assert "bad signature" in written
    assert SECRET not in written
