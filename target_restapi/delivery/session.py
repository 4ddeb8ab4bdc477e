"""The run's requests session and adapter, without per-request work of a fixed outcome.

For every request, requests' Session reads the proxy variables (scanning the whole
environment, twice) and merges cookie jars, parameters and settings. In a run the
environment does not change and no cookie is ever kept (the session's jar takes none),
so both are worked out once: the environment's proxies, NO_PROXY rule and CA bundle per
scheme and host, and a request without cookies or parameters is prepared directly.
Anything else (cookies, parameters, no auth: requests' `.netrc` look-up) goes the way
requests goes. Redirects are resolved by requests as before.

requests' HTTPAdapter parses each request's URL three more times to find its urllib3
pool and the path to send; without a proxy, `LeanAdapter` keeps what picks the pool
per scheme and host and still asks urllib3's PoolManager for the pool each time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.exceptions import InvalidURL
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import ConnectionPool

from target_restapi.delivery.url_safety import DotSafeSession, encode_dot_segments

if TYPE_CHECKING:
    from requests.sessions import _Settings  # in requests' stubs only

# Hosts or headers filled from records (allow_record_hosts) must not grow what is kept
# per host or per set of headers for ever.
MAX_KEPT = 1024


class NoCookieJar(RequestsCookieJar):
    """A jar that takes no cookie from answers, and whose policy refuses every cookie.

    One stream's session cookie must never go out with another stream's auth.
    """

    def __init__(self) -> None:
        super().__init__(DefaultCookiePolicy(allowed_domains=[]))

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Nothing to take (the policy would refuse it): no answer header is looked at."""


class LeanSession(DotSafeSession):
    """A DotSafeSession that prepares plain requests directly and reads the environment once."""

    def __init__(self) -> None:
        super().__init__()
        self.cookies = NoCookieJar()
        self._environments: dict[tuple[Any, ...], _Settings] = {}
        # The session's headers are set before the first request and never changed after.
        self._headers: dict[tuple[Any, ...], CaseInsensitiveDict[str]] = {}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """What requests would prepare, skipping the empty cookie and parameter merges."""
        if request.cookies or request.params or self.params or request.auth is None:
            return super().prepare_request(request)
        if request.files or request.json is not None or len(self.cookies):
            return super().prepare_request(request)
        prepared = requests.PreparedRequest()  # requests' prepare(), in its order
        prepared.prepare_method(request.method)
        prepared.prepare_url(request.url, None)
        # A stream's requests mostly carry the same headers: merged and checked once.
        key = tuple(request.headers.items())
        headers = self._headers.get(key)
        if headers is None:
            merged = CaseInsensitiveDict(self.headers)
            merged.update(request.headers)
            prepared.prepare_headers(
                {name: value for name, value in merged.items() if value is not None}
            )
            if len(self._headers) >= MAX_KEPT:
                self._headers.clear()
            self._headers[key] = prepared.headers.copy()
        else:
            prepared.headers = headers.copy()  # the body and auth add to their copy
        # Empty: no Cookie header to work out. An attribute requests has, its stubs lack.
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]
        prepared.prepare_body(request.data, None, None)
        prepared.prepare_auth(request.auth, request.url)  # after the body: a signer sees it
        prepared.prepare_hooks(merge_hooks(request.hooks, self.hooks))
        prepared.url = encode_dot_segments(prepared.url or "")
        return prepared

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """The walk through redirects, not begun for an answer that is none."""
        if not resp.is_redirect:  # requests' walk would end before its first step
            return iter(())
        walk: Iterator[Any] = super().resolve_redirects(resp, req, *args, **kwargs)
        return walk

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
            if len(self._environments) >= MAX_KEPT:
                self._environments.clear()
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environments[key] = settings
        fresh = settings.copy()
        fresh["proxies"] = dict(settings["proxies"])  # the caller's to change
        return fresh


class LeanAdapter(HTTPAdapter):
    """An HTTPAdapter that, without a proxy, works out a scheme and host's pool key once.

    urllib3's PoolManager still hands out the pool (and still closes the least recently
    used when it holds too many); only the URL parsing that names it is done once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool_keys: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # host params, kwargs

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: str | tuple[str, str] | None = None,
    ) -> ConnectionPool:
        """The urllib3 pool requests would pick for `request`."""
        if proxies:  # through a proxy's manager: requests' own way
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        # Scheme and authority: everything before the path (the URL is a prepared one).
        origin = (request.url or "").split("/", 3)[:3]
        key = (*origin, verify, cert)
        found = self._pool_keys.get(key)
        if found is None:  # as requests works it out without a proxy
            try:
                # As requests passes it (it is never None once the session merged settings).
                found = self.build_connection_pool_key_attributes(request, verify, cert)  # type: ignore[arg-type]
            except ValueError as exc:
                raise InvalidURL(exc, request=request) from exc
            if len(self._pool_keys) >= MAX_KEPT:
                self._pool_keys.clear()
            self._pool_keys[key] = found
        host_params, pool_kwargs = found
        pool: ConnectionPool = self.poolmanager.connection_from_host(
            **host_params, pool_kwargs=pool_kwargs
        )
        return pool

    def request_url(
        self, request: requests.PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        """The path and query: what requests sends when no proxy is in `proxies`."""
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url
