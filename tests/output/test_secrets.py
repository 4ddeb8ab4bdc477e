"""Secrets never reach stdout, stderr or the error file, at any log level, failures included.

Response files (test_responses_secrets.py) and texts cut short (test_secrets_masking.py)
have their own files.
"""

import base64
import json
import subprocess

import pytest
from support.loopback import Got, Server
from support.run import (
    DEBUG_ENV,
    NO_RETRY,
    TARGET,
    clean_env,
    data_file,
    failing,
    run_target,
    write_config,
)
from support.singer_lines import USERS as TOKEN_USERS
from support.singer_lines import basic
from werkzeug import Response

USERS = data_file("users.singer")  # ids 1..5
PASSWORD = "pw-Zq8-very-secret"
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
TOKEN = "tok-Xy7-bearer-secret"
URL_PASSWORD = "url-Pw3-secret"


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
    recorder.respond = failing({2})
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
    recorder.respond = failing({2})
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
    recorder.respond = failing({2})
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


# Credentials a server echoes back: never in the debug log, the error or the error file


def echo_credentials(status: int = 500):
    """An API that answers with what it got: the Authorization header, decoded, and Cookie."""

    def answer(got: Got):
        auth = got.headers.get("authorization", "")
        decoded = ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[len("Basic ") :]).decode()
        cookie = got.headers.get("cookie", "")
        return status, {}, f"denied: authorization={auth} decoded={decoded} cookie={cookie}"

    return answer


SECRET_CASES = {
    "basic": (
        {"auth_type": "basic", "username": "alice", "password": "pw-Basic-51"},
        ["pw-Basic-51", basic("alice", "pw-Basic-51")],
    ),
    "basic-per-stream": (
        {
            "streams": {
                "users": {"auth_type": "basic", "username": "bob", "password": "pw-Stream-52"}
            }
        },
        ["pw-Stream-52", basic("bob", "pw-Stream-52")],
    ),
    "authorization-header": (
        {"headers": {"Authorization": "Bearer tok-Header-53"}},
        ["Bearer tok-Header-53"],
    ),
    "cookie-header": (
        {"headers": {"Cookie": "sid=ck-Cookie-54"}},
        ["sid=ck-Cookie-54"],
    ),
    "url-userinfo": (
        {"userinfo": "carol:pw-Url-55"},
        ["pw-Url-55", basic("carol", "pw-Url-55")],
    ),
    # requests decodes percent-escapes of the userinfo before it builds the Basic header.
    "url-userinfo-escaped": (
        {"userinfo": "dave:pw%40Esc-57"},
        ["pw@Esc-57", "pw%40Esc-57", basic("dave", "pw@Esc-57")],
    ),
}


def secret_config(server: Server, case: str) -> tuple[dict, list[str]]:
    settings, secrets = SECRET_CASES[case]
    settings = dict(settings)
    userinfo = settings.pop("userinfo", "")
    return {"url": server.url("/users", userinfo=userinfo), **settings, **NO_RETRY}, secrets


def assert_no_secret(secrets: list[str], **outputs: str) -> None:
    for where, text in outputs.items():
        for secret in secrets:
            leaks = [line[-300:] for line in text.splitlines() if secret in line]
            assert not leaks, f"secret {secret!r} in {where}: " + "\n".join(leaks)


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_secrets_never_in_debug_logs_or_the_error_message(serve, tmp_path, case):
    server = serve(echo_credentials())
    config, secrets = secret_config(server, case)

    result = run_target(config, TOKEN_USERS, tmp_path, env=clean_env(**DEBUG_ENV))

    assert result.returncode != 0
    assert "denied: authorization=" in result.stderr  # the echoed answer is in the message
    assert "DEBUG" in result.stderr
    sent = server.requests[0].headers
    credentials = sent.get("authorization", "") + sent.get("cookie", "")
    assert any(secret in credentials for secret in secrets)
    assert_no_secret(secrets, stderr=result.stderr, stdout=result.stdout)


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_secrets_never_in_the_error_file(serve, tmp_path, case):
    server = serve(echo_credentials())
    config, secrets = secret_config(server, case)
    error_file = tmp_path / "errors" / "failed.jsonl"
    config.update(fail_on_error=False, error_file_path=str(error_file))

    result = run_target(config, TOKEN_USERS, tmp_path, env=clean_env(**DEBUG_ENV))

    assert result.returncode == 0, result.stderr
    lines = error_file.read_text().splitlines()
    assert len(lines) == 3
    assert all("denied: authorization=" in json.loads(line)["answer"] for line in lines)
    assert_no_secret(
        secrets, error_file=error_file.read_text(), stderr=result.stderr, stdout=result.stdout
    )


def test_the_token_of_an_authorization_header_is_secret_too(serve, tmp_path):
    """APIs often answer `invalid token <token>`: the credentials part alone must not leak."""

    def answer(got: Got):
        token = got.headers.get("authorization", "").partition(" ")[2]
        return 401, {}, f"invalid token {token}"

    server = serve(answer)
    error_file = tmp_path / "failed.jsonl"
    config = {
        "url": server.url("/users"),
        "headers": {"Authorization": "Bearer tok-Part-56"},
        "fail_on_error": False,
        "error_file_path": str(error_file),
    }

    result = run_target(config, TOKEN_USERS, tmp_path, env=clean_env(**DEBUG_ENV))

    assert result.returncode == 0, result.stderr
    assert "invalid token" in error_file.read_text()
    assert_no_secret(["tok-Part-56"], error_file=error_file.read_text(), stderr=result.stderr)


def test_a_mistyped_password_is_not_shown_by_the_settings_check(serve, tmp_path):
    """A YAML `password: 48151623` arrives as a number; the refusal must not print it."""
    server = serve()
    config = {
        "url": server.url("/users"),
        "auth_type": "basic",
        "username": "alice",
        "password": 48151623,
    }

    result = run_target(config, TOKEN_USERS, tmp_path, env=clean_env(**DEBUG_ENV))

    assert result.returncode != 0
    assert "password" in result.stderr
    assert server.requests == []
    assert_no_secret(["48151623"], stderr=result.stderr, stdout=result.stdout)
