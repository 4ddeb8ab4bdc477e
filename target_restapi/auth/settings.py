"""Settings that say who sends the requests: auth type, client certificate, HMAC signature.

Given at the top level and again per stream, like the other request settings; checked
once at start-up, so a missing or malformed credential stops the run before any input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from target_restapi.auth.mtls import ClientCert, key_secrets
from target_restapi.errors import SettingsError
from target_restapi.output.redact import basic_token
from target_restapi.sdk_seam import th
from target_restapi.templates import header_value_problem

AUTH_TYPES = ("none", "basic", "bearer", "api_key", "oauth2_client_credentials")
API_KEY_LOCATIONS = ("header", "query")
CLIENT_AUTH = ("basic", "body")


def auth_properties() -> list[th.Property]:
    """The schema of these settings; new objects each call (per-stream copies drop defaults)."""
    return [
        th.Property(
            "auth_type",
            th.StringType(allowed_values=list(AUTH_TYPES)),
            default="none",
            description="`none`; `basic` (`username`, `password`); `bearer` (`bearer_token`); "
            "`api_key` (`api_key_*`); `oauth2_client_credentials` (`oauth2_*`).",
        ),
        th.Property("username", th.StringType, description="User name for `basic` auth."),
        th.Property(
            "password", th.StringType, secret=True, description="Password for `basic` auth."
        ),
        th.Property(
            "bearer_token",
            th.StringType,
            secret=True,
            description="Token sent as `Authorization: Bearer <token>` (`bearer` auth).",
        ),
        th.Property(
            "api_key_name",
            th.StringType,
            description="Header or query parameter that carries the API key (`api_key` auth).",
        ),
        th.Property(
            "api_key_value", th.StringType, secret=True, description="The API key (`api_key` auth)."
        ),
        th.Property(
            "api_key_location",
            th.StringType(allowed_values=list(API_KEY_LOCATIONS)),
            default="header",
            description="`header`, or `query` to append the key to the URL's query (encoded).",
        ),
        th.Property(
            "oauth2_token_url",
            th.StringType,
            description="Token endpoint for `oauth2_client_credentials` auth.",
        ),
        th.Property("oauth2_client_id", th.StringType, description="OAuth2 client id."),
        th.Property(
            "oauth2_client_secret", th.StringType, secret=True, description="OAuth2 client secret."
        ),
        th.Property(
            "oauth2_scope",
            th.StringType,
            description="Space-separated scopes asked for with the token (optional).",
        ),
        th.Property(
            "oauth2_client_auth",
            th.StringType(allowed_values=list(CLIENT_AUTH)),
            default="basic",
            description="How the client authenticates at the token endpoint: `basic` (HTTP "
            "Basic) or `body` (`client_id` and `client_secret` in the form body).",
        ),
        th.Property(
            "client_cert",
            th.StringType,
            secret=True,  # it may hold the private key
            description="Client certificate for mutual TLS: a PEM file path or PEM text; may "
            "hold the key too.",
        ),
        th.Property(
            "client_key",
            th.StringType,
            secret=True,
            description="Private key of `client_cert` (unencrypted): a PEM file path or PEM text.",
        ),
        th.Property(
            "hmac_secret",
            th.StringType,
            secret=True,
            description="Sign each request: `hmac_header` carries `sha256=<hex HMAC-SHA256 of "
            "the body bytes sent>` (after compression).",
        ),
        th.Property(
            "hmac_header",
            th.StringType,
            default="X-Signature",
            description="Header that carries the HMAC signature.",
        ),
    ]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key and where it goes."""

    name: str
    value: str = field(repr=False)
    in_query: bool


@dataclass(frozen=True, slots=True)
class OAuth2Client:
    """A client of the OAuth2 client-credentials grant; hashable, so streams can share tokens."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None
    secret_in_body: bool


@dataclass(frozen=True, slots=True)
class HmacSigning:
    """The HMAC secret and the header that carries the signature."""

    secret: str = field(repr=False)
    header: str


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """One stream's checked credentials: at most one auth type, plus mTLS and signing."""

    basic: tuple[str, str] | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    api_key: ApiKey | None = None
    oauth2: OAuth2Client | None = None
    client_cert: ClientCert | None = None
    signing: HmacSigning | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: str) -> AuthSettings:
        """Check the merged settings of one stream; SettingsError names what is missing."""
        kind = values.get("auth_type") or "none"
        if kind not in AUTH_TYPES:
            raise SettingsError(
                f"{where}: setting 'auth_type' is {kind!r}; use one of {', '.join(AUTH_TYPES)}"
            )
        needs = {
            "basic": ("username", "password"),
            "bearer": ("bearer_token",),
            "api_key": ("api_key_name", "api_key_value"),
            "oauth2_client_credentials": (
                "oauth2_token_url",
                "oauth2_client_id",
                "oauth2_client_secret",
            ),
        }.get(kind, ())
        if not all(_given(values, name) for name in needs):
            names = " and ".join(f"'{name}'" for name in needs)
            raise SettingsError(f"{where}: auth_type '{kind}' needs settings {names}")
        in_header = ["bearer_token", "hmac_header"]
        if values.get("api_key_location") != "query":  # a query value is percent-encoded
            in_header += ["api_key_name", "api_key_value"]
        for name in in_header:
            _sendable_in_a_header(values, name, where)
        if kind == "oauth2_client_credentials":
            _check_oauth2(values, where)
        return cls(
            basic=(values["username"], values["password"]) if kind == "basic" else None,
            bearer_token=values["bearer_token"] if kind == "bearer" else None,
            api_key=_api_key(values) if kind == "api_key" else None,
            oauth2=_oauth2(values) if kind == "oauth2_client_credentials" else None,
            client_cert=ClientCert.from_settings(
                values.get("client_cert"), values.get("client_key"), where
            ),
            signing=(
                HmacSigning(values["hmac_secret"], values.get("hmac_header") or "X-Signature")
                if values.get("hmac_secret")
                else None
            ),
        )


def _given(values: Mapping[str, Any], name: str) -> bool:
    """Set and not empty; an empty password is a password all the same."""
    value = values.get(name)
    return value is not None and (value != "" or name == "password")


def _api_key(values: Mapping[str, Any]) -> ApiKey:
    in_query = values.get("api_key_location") == "query"
    return ApiKey(values["api_key_name"], values["api_key_value"], in_query)


def _oauth2(values: Mapping[str, Any]) -> OAuth2Client:
    return OAuth2Client(
        token_url=values["oauth2_token_url"],
        client_id=values["oauth2_client_id"],
        client_secret=values["oauth2_client_secret"],
        scope=values.get("oauth2_scope") or None,
        secret_in_body=values.get("oauth2_client_auth") == "body",
    )


def _sendable_in_a_header(values: Mapping[str, Any], name: str, where: str) -> None:
    """A credential sent in a header must be one a header can carry, told at start-up."""
    value = values.get(name)
    problem = header_value_problem(value) if isinstance(value, str) else None
    if problem:
        raise SettingsError(f"{where}: setting '{name}' {problem}; fix the setting")


def _check_oauth2(values: Mapping[str, Any], where: str) -> None:
    parts = urlsplit(values["oauth2_token_url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{where}: setting 'oauth2_token_url' must be an http:// or https:// URL"
        )
    if values.get("oauth2_client_auth") != "body":
        try:
            f"{values['oauth2_client_id']}:{values['oauth2_client_secret']}".encode("latin-1")
        except UnicodeEncodeError:
            raise SettingsError(
                f"{where}: 'oauth2_client_id' or 'oauth2_client_secret' has characters that "
                "HTTP Basic cannot carry (outside latin-1); set 'oauth2_client_auth' to 'body'"
            ) from None


def auth_secrets(values: Mapping[str, Any]) -> list[str]:
    """The secret values of these settings in every spelling a request could carry."""
    found = [values.get(name) for name in ("bearer_token", "hmac_secret")]
    key = values.get("api_key_value")
    if key:
        found += [key, quote_plus(key), quote(key, safe="")]
    secret = values.get("oauth2_client_secret")
    if secret:
        client = str(values.get("oauth2_client_id") or "")
        found += [secret, quote_plus(secret), basic_token(client, secret)]
    found += key_secrets(values.get("client_key"), values.get("client_cert"))
    return [str(value) for value in found if value]
