"""auth_type bearer and api_key: what the server receives, per stream, and secrets kept."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from support.loopback import Got, Server, items_input
from support.run import DEBUG_ENV, clean_env, data_file, run_target

TOKEN = "tok-Br9-bearer-secret"
KEY = "key-Ak4 &=/+secret"  # every character that needs escaping in a query
BEARER = {"auth_type": "bearer", "bearer_token": TOKEN}


def api_key(location: str | None = None, name: str = "X-API-Key") -> dict:
    settings = {"auth_type": "api_key", "api_key_name": name, "api_key_value": KEY}
    return settings if location is None else {**settings, "api_key_location": location}


def test_bearer_token_is_sent_as_an_authorization_header(tmp_path):
    with Server() as server:
        result = run_target({"url": server.url("/in"), **BEARER}, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [got.headers["authorization"] for got in server.requests] == [f"Bearer {TOKEN}"] * 2


@pytest.mark.parametrize("location", [None, "header"], ids=["default", "header"])
def test_api_key_in_a_header(tmp_path, location):
    with Server() as server:
        config = {"url": server.url("/in?x=1"), **api_key(location)}
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [got.headers["x-api-key"] for got in server.requests] == [KEY] * 2
    assert [got.path for got in server.requests] == ["/in?x=1"] * 2


def test_api_key_in_the_query_is_encoded_and_keeps_the_existing_query(tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/items/#{id}?a=1&b=x%2Fy"),
            **api_key("query", name="api key"),
        }
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    paths = [got.path for got in server.requests]
    assert paths == [f"/items/{i}?a=1&b=x%2Fy&api+key=key-Ak4+%26%3D%2F%2Bsecret" for i in (1, 2)]
    query = parse_qs(urlsplit(paths[0]).query)
    assert query == {"a": ["1"], "b": ["x/y"], "api key": [KEY]}
    assert all("x-api-key" not in got.headers for got in server.requests)


def test_api_key_in_the_query_of_a_url_without_one(tmp_path):
    with Server() as server:
        config = {"url": server.url("/in"), **api_key("query", name="key")}
        result = run_target(config, items_input(1), tmp_path)

    assert result.returncode == 0, result.stderr
    assert server.requests[0].path == "/in?key=key-Ak4+%26%3D%2F%2Bsecret"


def test_auth_settings_can_differ_per_stream(tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/any"),
            **BEARER,
            "streams": {"b": api_key("query", name="k")},
        }
        result = run_target(config, data_file("two_streams.singer"), tmp_path)

    assert result.returncode == 0, result.stderr
    by_stream = {"a": [], "b": []}
    for got in server.requests:
        by_stream["a" if json.loads(got.body)["id"] < 100 else "b"].append(got)
    assert {got.headers.get("authorization") for got in by_stream["a"]} == {f"Bearer {TOKEN}"}
    assert {got.path for got in by_stream["a"]} == {"/any"}
    # the stream's auth_type replaces the top-level one: no bearer token beside the key
    assert {got.headers.get("authorization") for got in by_stream["b"]} == {None}
    assert {got.path for got in by_stream["b"]} == {"/any?k=key-Ak4+%26%3D%2F%2Bsecret"}


def test_api_key_header_is_not_carried_to_another_host(tmp_path):
    with Server() as b, Server(host="127.0.0.2") as other:
        b.answer = lambda got: (307, {"Location": other.url("/landing")}, "moved")
        config = {"url": b.url("/in"), **api_key(), "max_retries": 0}
        result = run_target(config, items_input(1), tmp_path)

    assert result.returncode == 0, result.stderr
    assert b.requests[0].headers["x-api-key"] == KEY
    assert other.requests, "the redirect was not followed"
    assert "x-api-key" not in other.requests[0].headers


def echo(got: Got):
    """An API that answers 400, quoting the request target and headers it got."""
    return 400, {}, f"bad request {got.path} {json.dumps(got.headers)}"


@pytest.mark.parametrize(
    "settings",
    [BEARER, api_key("header"), api_key("query")],
    ids=["bearer", "api_key-header", "api_key-query"],
)
@pytest.mark.parametrize("fail_on_error", [True, False])
def test_tokens_and_keys_never_reach_logs_or_error_files(tmp_path, settings, fail_on_error):
    errors = tmp_path / "errors.jsonl"
    with Server(echo) as server:
        config = {
            "url": server.url("/in?x=1"),
            **settings,
            "fail_on_error": fail_on_error,
            "error_file_path": str(errors),
            "max_retries": 0,
        }
        result = run_target(config, items_input(2), tmp_path, env=clean_env(**DEBUG_ENV))

    written = result.stdout + result.stderr + (errors.read_text() if errors.exists() else "")
    assert "bad request" in written
    assert "DEBUG" in result.stderr
    for secret in (TOKEN, KEY, "key-Ak4+%26%3D%2F%2Bsecret", "key-Ak4%20%26%3D%2F%2Bsecret"):
        assert secret not in written


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"auth_type": "bearer"}, ["bearer_token"]),
        ({"auth_type": "api_key", "api_key_value": KEY}, ["api_key_name"]),
        ({"auth_type": "api_key", "api_key_name": "k"}, ["api_key_value"]),
        ({**BEARER, "bearer_token": "a\r\nX-Evil: 1"}, ["bearer_token", "line break"]),
        ({"streams": {"s": {"auth_type": "bearer"}}}, ["'s'", "bearer_token"]),
        ({**BEARER, "bearer_token": "t\u00f6k\u20acn"}, ["bearer_token", "U+20AC"]),
        (
            {"auth_type": "api_key", "api_key_name": "k", "api_key_value": "v\u2028"},
            ["api_key_value", "U+2028"],
        ),
    ],
    ids=["bearer", "key-name", "key-value", "token-crlf", "per-stream", "token-euro", "key-u2028"],
)
def test_incomplete_settings_are_refused_at_start(tmp_path, settings, names):
    with Server() as server:
        result = run_target({"url": server.url("/in"), **settings}, items_input(1), tmp_path)

    assert result.returncode != 0
    for name in names:
        assert name in result.stderr
    assert server.requests == []
    assert "Traceback" not in result.stderr
