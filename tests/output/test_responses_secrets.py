"""No secret reaches a response file: not in URLs, headers, bodies or error texts.

The servers here echo the request's Authorization header back, as many APIs do in
error answers and debug endpoints. The check reads the raw file text, so a secret is
caught whatever the format and wherever in the entry it lands.
"""

import base64
import json
from urllib.parse import urlsplit

import pytest
from support.responses import FORMATS, ORDERS, local_files, parse_entries
from support.run import NO_RETRY, run_target
from werkzeug import Response

USER = "alice"
# '??' sits where base64 turns it into '/': the token is "YWxpY2U6cD8/..." and a server
# that escapes '/' in JSON (PHP's json_encode, for one) writes it as "cD8\/".
PASSWORD = "p??w0rd-Secret-7Kq"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "tok/Zq9+Bearer-Secret=="
assert "/" in BASIC


def echo(style: str):
    """A server that puts the request's Authorization header into its answer."""

    def respond(seen):
        auth = seen.header("Authorization") or ""
        if style == "json":
            return Response(json.dumps({"you_sent": auth}), content_type="application/json")
        if style == "json-escaped-slashes":
            body = json.dumps({"you_sent": auth}).replace("/", "\\/")
            return Response(body, content_type="application/json")
        if style == "json-unicode-escapes":
            body = json.dumps({"you_sent": auth}).replace("a", "\\u0061")
            return Response(body, content_type="application/json")
        if style == "text":
            return Response(f"hello {auth}", content_type="text/plain")
        if style == "error-400":
            return Response(f"bad request, you sent Authorization: {auth}", status=400)
        if style == "error-json-500":
            body = json.dumps({"error": "denied", "authorization": auth})
            return Response(body, status=500, content_type="application/json")
        if style == "location":
            token = auth.partition(" ")[2]
            return Response("", status=201, headers={"Location": f"/orders/1?token={token}"})
        if style == "rate-limit-header":
            return Response("ok", headers={"X-RateLimit-Client": auth})
        raise AssertionError(style)

    return respond


STYLES = [
    "json",
    "json-escaped-slashes",
    "json-unicode-escapes",
    "text",
    "error-400",
    "error-json-500",
    "location",
    "rate-limit-header",
]


def run_saving(recorder, httpserver, tmp_path, style, fmt, **settings):
    recorder.respond = echo(style)
    folder = tmp_path / "out"
    config = {
        "url": httpserver.url_for("/orders"),
        "save_responses": True,
        "response_file_path": str(folder),
        "response_file_format": fmt,
        "fail_on_error": False,
        **NO_RETRY,
        **settings,
    }
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 0, result.stderr
    [file] = local_files(folder)
    text = file.read_bytes().decode()
    entries = parse_entries(text, fmt)
    assert len(entries) == 5
    return text, entries, result


def assert_no_secret(text: str, entries: list[dict], *secrets: str) -> None:
    # Decoded values as well: a secret may be spelled with escapes in the file's JSON.
    decoded = json.dumps(entries, ensure_ascii=False)
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} is in the response file:\n{text}"
        assert secret not in decoded, f"secret {secret!r} is in the decoded entries"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("style", STYLES)
def test_basic_auth_secrets_never_reach_the_file(recorder, httpserver, tmp_path, style, fmt):
    text, entries, _ = run_saving(
        recorder,
        httpserver,
        tmp_path,
        style,
        fmt,
        auth_type="basic",
        username=USER,
        password=PASSWORD,
    )
    assert recorder.requests[0].header("Authorization") == f"Basic {BASIC}"
    assert_no_secret(text, entries, PASSWORD, BASIC)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("style", STYLES)
def test_an_authorization_header_setting_never_reaches_the_file(
    recorder, httpserver, tmp_path, style, fmt
):
    text, entries, _ = run_saving(
        recorder, httpserver, tmp_path, style, fmt, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert recorder.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert_no_secret(text, entries, TOKEN)


@pytest.mark.parametrize("style", ["json", "text", "error-400"])
def test_url_userinfo_never_reaches_the_file(recorder, httpserver, tmp_path, style):
    url_password = "Url-Pw-Secret-3Zx"
    parts = urlsplit(httpserver.url_for("/orders"))
    url = parts._replace(netloc=f"bob:{url_password}@{parts.netloc}").geturl()
    token = base64.b64encode(f"bob:{url_password}".encode()).decode()
    recorder.respond = echo(style)
    folder = tmp_path / "out"
    config = {
        "url": url,
        "save_responses": True,
        "response_file_path": str(folder),
        "fail_on_error": False,
        **NO_RETRY,
    }
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    assert recorder.requests[0].header("Authorization") == f"Basic {token}"
    [file] = local_files(folder)
    text = file.read_bytes().decode()
    entries = parse_entries(text, "jsonl")
    assert_no_secret(text, entries, url_password, token, f"bob:{url_password}")
    for entry in entries:
        saved = urlsplit(entry["url"])
        assert saved.password is None
        assert (saved.hostname, saved.port, saved.path) == (parts.hostname, parts.port, "/orders")


def test_a_non_ascii_basic_password_never_reaches_the_file(recorder, httpserver, tmp_path):
    password = "pässwört-Secret-9Lm"
    text, entries, _ = run_saving(
        recorder,
        httpserver,
        tmp_path,
        "json",
        "jsonl",
        auth_type="basic",
        username=USER,
        password=password,
    )
    sent = recorder.requests[0].header("Authorization").partition(" ")[2]
    assert base64.b64decode(sent).decode("utf-8") == f"{USER}:{password}"  # RFC 7617
    assert_no_secret(text, entries, password, sent)


def test_cookies_are_never_saved(recorder, httpserver, tmp_path):
    recorder.respond = lambda seen: Response(
        "ok", headers=[("Set-Cookie", "sid=Cookie-Secret-1; HttpOnly"), ("Set-Cookie", "b=2")]
    )
    folder = tmp_path / "out"
    config = {"url": httpserver.url_for("/o"), "save_responses": True,
              "response_file_path": str(folder)}  # fmt: skip
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    [file] = local_files(folder)
    text = file.read_bytes().decode()
    assert "Cookie-Secret-1" not in text
    assert "set-cookie" not in text.lower()
