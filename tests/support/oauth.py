"""An OAuth2 client-credentials token endpoint and an API that checks its tokens, on loopback."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from urllib.parse import parse_qs

from support.loopback import Got, Server

CLIENT_ID = "client-7"
CLIENT_SECRET = "cs-Oa7-client-secret"
JSON = {"Content-Type": "application/json"}


class OAuthApi:
    """A token endpoint and an API that checks its tokens; answers with `server.answer`."""

    def __init__(self, lifetime: float = 60, delay: float = 0.0) -> None:
        self.lifetime = lifetime
        self.delay = delay
        self.expiry: dict[str, float] = {}  # token -> time.monotonic() it expires
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.revoke_first_after: int | None = None  # API requests answered before revoking
        self.token_failures = 0  # token requests to answer 503 first
        self.refuse_all = False  # the API answers 401 to every token
        self.api_answers: list[tuple[str, int]] = []  # (token, status)
        self.lock = threading.Lock()

    def __call__(self, got: Got) -> tuple[int, dict[str, str], str]:
        if got.path.startswith("/token"):
            return self.token(got)
        return self.api(got)

    def token(self, got: Got) -> tuple[int, dict[str, str], str]:
        form = parse_qs(got.body.decode())
        client_id, secret = client_credentials(got)
        with self.lock:
            if self.token_failures:
                self.token_failures -= 1
                return 503, {}, "busy"
            if form.get("grant_type") != ["client_credentials"]:
                return 400, JSON, json.dumps({"error": "unsupported_grant_type"})
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                error = {"error": "invalid_client", "error_description": "unknown client"}
                return 401, JSON, json.dumps(error)
            token = f"at-{len(self.issued) + 1}-{secrets.token_hex(8)}"
            self.issued.append(token)
            self.expiry[token] = time.monotonic() + self.lifetime
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        return 200, JSON, json.dumps(answer)

    def api(self, got: Got) -> tuple[int, dict[str, str], str]:
        token = got.headers.get("authorization", "").removeprefix("Bearer ")
        with self.lock:
            answered = len(self.api_answers)
            if self.revoke_first_after is not None and answered >= self.revoke_first_after:
                self.revoked.add(self.issued[0])
            valid = token not in self.revoked and time.monotonic() < self.expiry.get(token, 0)
            valid = valid and not self.refuse_all
            self.api_answers.append((token, 200 if valid else 401))
        if not valid:
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "invalid token"
        time.sleep(self.delay)
        return 200, {}, "ok"

    @property
    def statuses(self) -> list[int]:
        return [status for _, status in self.api_answers]


def client_credentials(got: Got) -> tuple[str | None, str | None]:
    """The client id and secret of a token request, from HTTP Basic or from the body."""
    header = got.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, secret
    form = parse_qs(got.body.decode())
    return form.get("client_id", [None])[0], form.get("client_secret", [None])[0]


def oauth_config(server: Server, **extra) -> dict:
    return {
        "url": server.url("/api/items/#{id}"),
        "auth_type": "oauth2_client_credentials",
        "oauth2_token_url": server.url("/token"),
        "oauth2_client_id": CLIENT_ID,
        "oauth2_client_secret": CLIENT_SECRET,
        "max_backoff_seconds": 0.05,
        **extra,
    }
