"""OAuth2 client-credentials tokens: fetched once, shared, renewed in time and on a 401.

authlib makes the token request (client authentication at the token endpoint as RFC
6749 allows: HTTP Basic or in the body) and reads the answer; this module decides when
a token is fetched, so that every thread, and every stream with the same client, uses
one token. Each token is given to the Redactor the moment it arrives.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from requests import PreparedRequest
from requests.auth import AuthBase

from target_restapi.auth.settings import OAuth2Client
from target_restapi.delivery.deadline import WatchedAdapter
from target_restapi.output.redact import Redactor, redact_url

if TYPE_CHECKING:
    from target_restapi.tunnel.ssh import Tunnels

MAX_EARLY_SECONDS = 30.0  # renew a token this long before it expires, at most
EARLY_SHARE = 0.1  # ... and at most this share of its lifetime
# What a header value can carry: visible ASCII (RFC 6750's b64token is a part of it).
HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


class TokenError(requests.RequestException):
    """The token endpoint refused to give a token; the message says why."""


class TokenUnavailable(TokenError, requests.ConnectionError):
    """The token endpoint could not be reached or failed (5xx, 429): worth another attempt."""


class OAuth2ClientCredentials(AuthBase):
    """A bearer token of the client-credentials grant, shared by threads, renewed in time."""

    def __init__(
        self,
        client: OAuth2Client,
        *,
        options: dict[str, Any],
        tunnels: Tunnels | None,
        redactor: Redactor,
    ) -> None:
        self._url = client.token_url
        self._session = OAuth2Session(
            client.client_id,
            client.client_secret,
            token_endpoint_auth_method=(
                "client_secret_post" if client.secret_in_body else "client_secret_basic"
            ),
            scope=client.scope,
        )
        if tunnels is not None:
            tunnels.mount(self._session)
        else:  # a token fetched for a request shares its deadline and its stop
            self._session.mount("http://", WatchedAdapter())
            self._session.mount("https://", WatchedAdapter())
        # verify, cert, timeout; a redirect would turn the POST into a GET: refuse it.
        self._options = {**options, "allow_redirects": False}
        self._redactor = redactor
        self._lock = threading.Lock()
        self._header: str | None = None
        self._renew_at = 0.0

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set the current token, fetching one first when there is none or it runs out."""
        with self._lock:
            header = self._header
            if header is None or time.monotonic() >= self._renew_at:
                header = self._fetch()
            request.headers["Authorization"] = header
        return request

    def renew(self, response: requests.Response) -> bool:
        """A 401: the next request fetches a new token, unless one replaced the token used."""
        with self._lock:
            if response.request.headers.get("Authorization") == self._header:
                self._renew_at = 0.0
        return True

    def _fetch(self) -> str:
        asked = time.monotonic()
        where = f"the OAuth2 token endpoint {redact_url(self._url)}"
        try:
            token = self._session.fetch_token(
                self._url, grant_type="client_credentials", **self._options
            )
        except OAuthError as exc:
            raise TokenError(f"{where} refused: {exc}") from None
        except requests.HTTPError as exc:
            status = exc.response.status_code
            unavailable = status >= 500 or status == 429
            error = TokenUnavailable if unavailable else TokenError
            raise error(f"{where} answered {status} {exc.response.reason}") from None
        except requests.exceptions.SSLError as exc:  # a bad certificate stays bad
            raise TokenError(f"{where} could not be reached: {exc}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TokenUnavailable(f"{where} could not be reached: {exc}") from None
        except ValueError as exc:
            raise TokenError(f"{where} answered no token: {exc}") from None
        access = token.get("access_token")
        if not access:
            raise TokenError(f"{where} answered without an access_token")
        access = str(access)
        self._redactor.add([access, repr(access)[1:-1]])  # also as an error would quote it
        if not HEADER_SAFE.fullmatch(access):
            raise TokenError(
                f"{where} answered an access_token that cannot be sent in an HTTP header "
                "(it holds a line break, a space or a character outside visible ASCII); "
                "the token endpoint must issue header-safe tokens"
            )
        self._header = f"Bearer {access}"
        self._renew_at = asked + _lifetime(token.get("expires_in"))
        return self._header


def _lifetime(expires_in: Any) -> float:
    """Seconds a token is used for: a little less than it lives; unknown: until a 401."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return float("inf")
    return seconds - min(MAX_EARLY_SECONDS, seconds * EARLY_SHARE)
