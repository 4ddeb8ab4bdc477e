"""The run's requests session, without the per-request work whose outcome cannot change.

For every request, requests' Session reads the proxy variables (scanning the whole
environment, twice) and merges cookie jars, parameters and settings. In a run the
environment does not change and no cookie is ever kept (the Connections' cookie policy
refuses all), so both are worked out once: the environment's proxies, NO_PROXY rule
and CA bundle per scheme and host, and a request without cookies or parameters is
prepared directly. Anything else (cookies, parameters, no auth: requests' `.netrc`
look-up) goes the way requests goes. Redirects are resolved by requests as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict

from target_restapi.delivery.url_safety import DotSafeSession, encode_dot_segments

if TYPE_CHECKING:
    from requests.sessions import _Settings  # in requests' stubs only

MAX_KNOWN_HOSTS = 1024  # record-filled hosts (allow_record_hosts) must not grow it for ever


class LeanSession(DotSafeSession):
    """A DotSafeSession that prepares plain requests directly and reads the environment once."""

    def __init__(self) -> None:
        super().__init__()
        self._environments: dict[tuple[Any, ...], _Settings] = {}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """What requests would prepare, skipping the empty cookie and parameter merges."""
        if request.cookies or request.params or self.params or request.auth is None:
            return super().prepare_request(request)
        if request.files or request.json is not None or len(self.cookies):
            return super().prepare_request(request)
        headers = CaseInsensitiveDict(self.headers)
        headers.update(request.headers)
        prepared = requests.PreparedRequest()  # requests' prepare(), in its order
        prepared.prepare_method(request.method)
        prepared.prepare_url(request.url, None)
        prepared.prepare_headers(
            {name: value for name, value in headers.items() if value is not None}
        )
        # Empty: no Cookie header to work out. An attribute requests has, its stubs lack.
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]
        prepared.prepare_body(request.data, None, None)
        prepared.prepare_auth(request.auth, request.url)  # after the body: a signer sees it
        prepared.prepare_hooks(merge_hooks(request.hooks, self.hooks))
        prepared.url = encode_dot_segments(prepared.url or "")
        return prepared

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        """The merge requests does, worked out once per scheme and host of `url`."""
        if proxies:  # never given by the Transport: no shortcut to take
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        text = url.decode() if isinstance(url, bytes) else url or ""
        scheme, netloc = urlsplit(text)[:2]
        key = (scheme, netloc, stream, verify, cert)
        settings = self._environments.get(key)
        if settings is None:
            if len(self._environments) >= MAX_KNOWN_HOSTS:
                self._environments.clear()
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environments[key] = settings
        fresh = settings.copy()
        fresh["proxies"] = dict(settings["proxies"])  # the caller's to change
        return fresh
