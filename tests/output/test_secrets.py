"""Secrets never reach stdout or stderr, at any log level, failures included."""

import base64
import subprocess

import pytest
from support.run import DEBUG_ENV, NO_RETRY, TARGET, clean_env, data_file, run_target, write_config
from werkzeug import Response

USERS = data_file("users.singer")  # ids 1..5
PASSWORD = "pw-Zq8-very-secret"
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
TOKEN = "tok-Xy7-bearer-secret"
URL_PASSWORD = "url-Pw3-secret"


def fail_for(ids, body="nope"):
    def respond(seen):
        if seen.json()["id"] in ids:
            return Response(body, status=500)
        return None

    return respond


def echo_headers_for(ids):
    """A server that echoes the request's headers in its error answer (as many APIs do)."""

    def respond(seen):
        if seen.json()["id"] in ids:
            echoed = "; ".join(f"{k}: {v}" for k, v in seen.headers.items())
            return Response(f"bad request, you sent {echoed}", status=400)
        return None

    return respond


def assert_absent(result, *secrets):
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


@pytest.mark.parametrize("fail_on_error", [True, False])
@pytest.mark.parametrize("env", [{}, DEBUG_ENV], ids=["info", "debug"])
def test_basic_auth_password_never_logged(recorder, httpserver, tmp_path, env, fail_on_error):
    recorder.respond = fail_for({2})
    config = {
        "url": httpserver.url_for("/users"),
        "auth_type": "basic",
        "username": "alice",
        "password": PASSWORD,
        "fail_on_error": fail_on_error,
        **NO_RETRY,
    }
    result = run_target(config, USERS, tmp_path, env=clean_env(**env))
    assert (result.returncode == 0) is not fail_on_error
    assert recorder.requests[0].header("Authorization") == f"Basic {BASIC}"
    if env:
        assert "DEBUG" in result.stderr  # the run really logged at debug level
    assert_absent(result, PASSWORD, BASIC)


@pytest.mark.parametrize("fail_on_error", [True, False])
@pytest.mark.parametrize("env", [{}, DEBUG_ENV], ids=["info", "debug"])
def test_authorization_header_never_logged(recorder, httpserver, tmp_path, env, fail_on_error):
    recorder.respond = fail_for({2})
    config = {
        "url": httpserver.url_for("/users"),
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "fail_on_error": fail_on_error,
        **NO_RETRY,
    }
    result = run_target(config, USERS, tmp_path, env=clean_env(**env))
    assert recorder.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert_absent(result, TOKEN)


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_password_in_url_never_logged(recorder, httpserver, tmp_path, fail_on_error):
    recorder.respond = fail_for({2})
    url = httpserver.url_for("/users").replace("://", f"://alice:{URL_PASSWORD}@")
    config = {"url": url, "fail_on_error": fail_on_error, **NO_RETRY}
    result = run_target(config, USERS, tmp_path, env=clean_env(**DEBUG_ENV))
    assert len(recorder.requests) >= 2
    url_basic = base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()
    assert_absent(result, URL_PASSWORD, url_basic)


def test_password_in_url_template_never_logged_with_a_record_error(recorder, httpserver, tmp_path):
    # A null URL value is reported with the template; the template holds the user-info.
    url = httpserver.url_for("/items/#{id}").replace("://", f"://alice:{URL_PASSWORD}@")
    for fail_on_error in (True, False):
        config = {"url": url, "fail_on_error": fail_on_error}
        result = run_target(config, data_file("url_null_value.singer"), tmp_path)
        assert "null" in result.stderr
        assert_absent(result, URL_PASSWORD)


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_credentials_echoed_by_the_server_are_not_logged(
    recorder, httpserver, tmp_path, fail_on_error
):
    recorder.respond = echo_headers_for({2})
    config = {
        "url": httpserver.url_for("/users"),
        "auth_type": "basic",
        "username": "alice",
        "password": PASSWORD,
        "fail_on_error": fail_on_error,
        **NO_RETRY,
    }
    result = run_target(config, USERS, tmp_path, env=clean_env(**DEBUG_ENV))
    assert "bad request" in result.stderr
    assert_absent(result, PASSWORD, BASIC)


SECRET_HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-API-Key": TOKEN,
    "X-Auth-Token": TOKEN,
    "Ocp-Apim-Subscription-Key": TOKEN,
    "X-Amz-Security-Token": TOKEN,
    "Cookie": f"sid={TOKEN}",
}


@pytest.mark.parametrize("name", SECRET_HEADERS)
@pytest.mark.parametrize("fail_on_error", [True, False])
def test_header_token_echoed_by_the_server_is_not_logged(
    recorder, httpserver, tmp_path, fail_on_error, name
):
    recorder.respond = echo_headers_for({2})
    config = {
        "url": httpserver.url_for("/users"),
        "headers": {name: SECRET_HEADERS[name], "X-Tenant": "acme-eu", "Idempotency-Key": "k-123"},
        "fail_on_error": fail_on_error,
        **NO_RETRY,
    }
    result = run_target(config, USERS, tmp_path, env=clean_env(**DEBUG_ENV))
    assert "bad request" in result.stderr
    assert_absent(result, TOKEN)
    assert "acme-eu" in result.stderr  # headers that are not credentials stay readable
    assert "k-123" in result.stderr


def test_about_does_not_show_secrets(tmp_path):
    config = {"url": "http://127.0.0.1/x", "auth_type": "basic", "username": "a"}
    cfg = write_config({**config, "password": PASSWORD}, tmp_path)
    proc = subprocess.run(
        [*TARGET, "--config", str(cfg), "--about"],
        capture_output=True,
        env=clean_env(**DEBUG_ENV),
        timeout=60,
        check=False,
    )
    assert PASSWORD not in proc.stdout.decode()
    assert PASSWORD not in proc.stderr.decode()
