"""Request authentication as requests auths, built per stream from its AuthSettings.

The Transport gives the result with each request: the credentials first, then the
HMAC signer, so the signature covers the request as sent. Streams with the same OAuth2
client share one token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin

import requests
from requests import PreparedRequest
from requests.auth import AuthBase
from requests.sessions import SessionRedirectMixin
from requests.utils import get_auth_from_url

from target_restapi.auth.mtls import CertFiles
from target_restapi.auth.settings import ApiKey, AuthSettings
from target_restapi.auth.signing import HmacSigner
from target_restapi.output.redact import Redactor, basic_token

if TYPE_CHECKING:
    from target_restapi.auth.oauth2 import OAuth2ClientCredentials
    from target_restapi.tunnel.ssh import Tunnels

_REDIRECTS = SessionRedirectMixin()  # requests' own rule for dropping credentials


class BasicAuth(AuthBase):
    """`Authorization: Basic`, `username:password` in UTF-8 (RFC 7617) whatever it holds.

    requests' HTTPBasicAuth encodes as Latin-1 and fails on anything outside it.
    """

    def __init__(self, username: str, password: str) -> None:
        self._header = f"Basic {basic_token(username, password, utf8=True)}"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set the header."""
        request.headers["Authorization"] = self._header
        return request


class BearerAuth(AuthBase):
    """`Authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set the header."""
        request.headers["Authorization"] = self._header
        return request


class ApiKeyAuth(AuthBase):
    """An API key in a header, or appended (encoded) to the URL's query."""

    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Add the key; the existing query is kept as it is."""
        if self._key.in_query:
            request.prepare_url(request.url, {self._key.name: self._key.value})
        else:
            request.headers[self._key.name] = self._key.value
            request.register_hook("response", self._drop_before_leaving)
        return request

    def _drop_before_leaving(self, response: requests.Response, **_: object) -> None:
        """On a redirect elsewhere, drop the key header as requests drops Authorization."""
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if _REDIRECTS.should_strip_auth(response.url, target):
                response.request.headers.pop(self._key.name, None)


class UrlUserinfo(AuthBase):
    """Basic auth from the URL's `user:password@`, which requests applies only without auth."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set Basic auth when the URL carries user-info (never without an `@`: not parsed)."""
        url = request.url or ""
        if "@" not in url:
            return request
        username, password = get_auth_from_url(url)
        if username or password:
            request = BasicAuth(username, password)(request)
        return request


class AuthChain(AuthBase):
    """Applies auths in order; a 401 renews those that can renew."""

    def __init__(self, *auths: AuthBase) -> None:
        self._auths = auths

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Each auth in turn."""
        for auth in self._auths:
            request = auth(request)
        return request

    def renew(self, response: requests.Response) -> bool:
        """True when a credential was renewed, so the request is worth sending again."""
        renewed = [auth.renew(response) for auth in self._auths if hasattr(auth, "renew")]
        return any(renewed)


class Credentials:
    """For one run: each stream's auth and client certificate files, shared where equal."""

    def __init__(self, redactor: Redactor, tunnels: Tunnels | None) -> None:
        self._redactor = redactor
        self._tunnels = tunnels
        self._cert_files = CertFiles()
        self._oauth2: dict[tuple, OAuth2ClientCredentials] = {}

    def cert(self, settings: AuthSettings) -> str | tuple[str, str] | None:
        """What requests' `cert` takes for the stream's client certificate."""
        return self._cert_files.files(settings.client_cert)

    def auth(
        self, settings: AuthSettings, *, verify: bool | str, timeout: float, offline: bool = False
    ) -> AuthChain:
        """The stream's credentials (or the URL's user-info), then its signer.

        `offline` (a dry run) fetches no OAuth2 token: a stand-in shows where it would go.
        """
        auths: list[AuthBase] = []
        if settings.basic is not None:
            auths.append(BasicAuth(*settings.basic))
        elif settings.bearer_token is not None:
            auths.append(BearerAuth(settings.bearer_token))
        elif settings.api_key is not None:
            auths.append(ApiKeyAuth(settings.api_key))
        elif settings.oauth2 is not None and offline:
            auths.append(BearerAuth("(the token fetched at the first request)"))
        elif settings.oauth2 is not None:
            options = {"verify": verify, "cert": self.cert(settings), "timeout": timeout}
            key = (settings.oauth2, *options.values())
            if key not in self._oauth2:
                from target_restapi.auth.oauth2 import (
                    OAuth2ClientCredentials,
                )  # authlib: slow import

                self._oauth2[key] = OAuth2ClientCredentials(
                    settings.oauth2, options=options, tunnels=self._tunnels, redactor=self._redactor
                )
            auths.append(self._oauth2[key])
        # Without credentials, the URL's user-info still applies (requests drops it once
        # any auth is set). An auth is always set so requests never reads ~/.netrc: that
        # look-up costs more than the rest of preparing a request.
        auths = auths or [UrlUserinfo()]
        if settings.signing is not None:
            auths.append(HmacSigner(settings.signing))
        return AuthChain(*auths)

    def close(self) -> None:
        """Remove the client certificate files written for this run."""
        self._cert_files.close()
