"""auth_type oauth2_client_credentials against a real token endpoint and API on loopback.

The server issues short-lived tokens at /token and answers 401 at /api/... to a token
it did not issue, that expired, or that it revoked. Zero 401s over a run longer than a
token's life proves renewal before expiry; revoking a token proves renewal on a 401.
"""

from __future__ import annotations

import base64
from itertools import pairwise
from urllib.parse import parse_qs

import pytest
from support.loopback import Got, Server, items_input
from support.oauth import CLIENT_ID, CLIENT_SECRET, OAuthApi, oauth_config
from support.run import DEBUG_ENV, clean_env, data_file, run_target


def test_one_token_serves_every_request_and_thread(tmp_path):
    api = OAuthApi(delay=0.05)
    with Server(api) as server:
        config = oauth_config(server, max_concurrency=4)
        result = run_target(config, items_input(20), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(api.issued) == 1
    assert api.statuses == [200] * 20
    assert {token for token, _ in api.api_answers} == {api.issued[0]}
    assert max(got.in_flight for got in server.to("/api")) > 1, "no requests were concurrent"


def test_streams_with_the_same_client_share_one_token(tmp_path):
    api = OAuthApi()
    with Server(api) as server:
        config = oauth_config(server, url=server.url("/api/any"))
        result = run_target(config, data_file("two_streams.singer"), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(api.issued) == 1
    assert len(api.statuses) == 6


def test_token_is_renewed_shortly_before_it_expires(tmp_path):
    # Tokens live 2 s; 16 requests at 5/s take 3 s: a token used until it expired
    # would meet a 401. None does, and a second token is fetched on the way.
    api = OAuthApi(lifetime=2)
    with Server(api) as server:
        config = oauth_config(server, max_requests_per_second=5, max_retries=0)
        result = run_target(config, items_input(16), tmp_path)

    assert result.returncode == 0, result.stderr
    assert api.statuses == [200] * 16
    assert len(api.issued) >= 2, api.issued
    fetches = [got.at for got in server.to("/token")]
    gaps = [b - a for a, b in pairwise(fetches)]
    assert all(gap >= 1.5 for gap in gaps), gaps  # renewed near the end of its life, not before


def test_a_401_renews_the_token_once_and_resends_at_once(tmp_path):
    api = OAuthApi()
    api.revoke_first_after = 3
    with Server(api) as server:
        config = oauth_config(server, max_retries=0)  # the resend is not a retry
        result = run_target(config, items_input(5), tmp_path)

    assert result.returncode == 0, result.stderr
    assert api.statuses == [200, 200, 200, 401, 200, 200]
    assert len(api.issued) == 2
    assert [token for token, _ in api.api_answers][-2:] == [api.issued[1]] * 2
    resent = server.to("/api")
    assert resent[3].path == resent[4].path == "/api/items/4"


def test_concurrent_401s_renew_the_token_once(tmp_path):
    api = OAuthApi(delay=0.1)
    api.revoke_first_after = 6
    with Server(api) as server:
        config = oauth_config(server, max_concurrency=4, max_retries=0)
        result = run_target(config, items_input(20), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(api.issued) == 2
    assert api.statuses.count(200) == 20
    assert api.statuses.count(401) >= 1


def test_a_token_refused_again_after_renewal_fails_the_request(tmp_path):
    api = OAuthApi()
    api.refuse_all = True
    with Server(api) as server:
        result = run_target(oauth_config(server, max_retries=3), items_input(2), tmp_path)

    assert result.returncode != 0
    assert "401" in result.stderr
    assert len(api.issued) == 2  # the first token, and one renewal
    assert api.statuses == [401, 401]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_client_authenticates_at_the_token_endpoint_as_configured(tmp_path, client_auth):
    api = OAuthApi()
    with Server(api) as server:
        config = oauth_config(server, oauth2_client_auth=client_auth, oauth2_scope="read write")
        result = run_target(config, items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    [fetch] = server.to("/token")
    form = parse_qs(fetch.body.decode())
    assert fetch.method == "POST"
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["read write"]
    if client_auth == "basic":
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert fetch.headers["authorization"] == f"Basic {expected}"
        assert "client_secret" not in form
    else:
        assert "authorization" not in fetch.headers
        assert form["client_id"] == [CLIENT_ID]
        assert form["client_secret"] == [CLIENT_SECRET]


def test_a_refused_client_stops_the_run_naming_the_token_endpoint(tmp_path):
    api = OAuthApi()
    with Server(api) as server:
        config = oauth_config(server, oauth2_client_secret="cs-Wrong-9-secret")
        result = run_target(config, items_input(2), tmp_path, env=clean_env(**DEBUG_ENV))

    assert result.returncode != 0
    assert "token endpoint" in result.stderr
    assert "invalid_client" in result.stderr
    assert server.to("/api") == []
    assert "Traceback" not in result.stderr
    assert "cs-Wrong-9-secret" not in result.stderr


def test_a_failing_token_endpoint_is_retried(tmp_path):
    api = OAuthApi()
    api.token_failures = 1
    with Server(api) as server:
        result = run_target(oauth_config(server, max_retries=2), items_input(2), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(server.to("/token")) == 2
    assert api.statuses == [200, 200]


def echo_authorization(api: OAuthApi):
    """The API answers record 2 with a 400 that quotes the Authorization header it got."""

    def answer(got: Got):
        if got.path == "/api/items/2":
            return 400, {}, f"bad request; you sent {got.headers.get('authorization')}"
        return api(got)

    return answer


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_fetched_tokens_and_the_client_secret_never_reach_logs_or_error_files(
    tmp_path, fail_on_error
):
    api = OAuthApi()
    errors = tmp_path / "errors.jsonl"
    with Server(echo_authorization(api)) as server:
        config = oauth_config(
            server, fail_on_error=fail_on_error, error_file_path=str(errors), max_retries=0
        )
        result = run_target(config, items_input(3), tmp_path, env=clean_env(**DEBUG_ENV))

    written = result.stdout + result.stderr + (errors.read_text() if errors.exists() else "")
    assert "DEBUG" in result.stderr
    assert "bad request; you sent Bearer ***" in written
    [token] = api.issued
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in (token, CLIENT_SECRET, basic):
        assert secret not in written


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"oauth2_client_secret": None}, "oauth2_client_secret"),
        ({"oauth2_token_url": None}, "oauth2_token_url"),
        ({"oauth2_token_url": "ftp://127.0.0.1/token"}, "oauth2_token_url"),
        ({"oauth2_client_secret": "s€cret-Basic-1"}, "set 'oauth2_client_auth' to 'body'"),
    ],
    ids=["no-secret", "no-token-url", "not-http", "not-latin-1-for-basic"],
)
def test_incomplete_oauth2_settings_are_refused_at_start(tmp_path, settings, name):
    with Server() as server:
        config = {k: v for k, v in {**oauth_config(server), **settings}.items() if v is not None}
        result = run_target(config, items_input(1), tmp_path)

    assert result.returncode != 0
    assert name in result.stderr
    assert server.requests == []
    assert "Traceback" not in result.stderr
    assert "s€cret-Basic-1" not in result.stderr
