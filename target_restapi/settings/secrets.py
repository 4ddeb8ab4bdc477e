"""Which setting values are secrets, so the Redactor can mask them wherever they appear.

Collected once at start-up from the top level and every `streams` entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from target_restapi.auth.settings import auth_secrets
from target_restapi.delivery.shared_rate import redis_secrets
from target_restapi.output.redact import basic_token, is_secret_header, url_secrets
from target_restapi.settings.streams import merged
from target_restapi.tunnel.settings import tunnel_secrets


def stream_keys(config: Mapping[str, Any]) -> list[str]:
    """The top level ('') and every stream with a `streams` entry."""
    return ["", *(config.get("streams") or {})]


def secrets_in(config: Mapping[str, Any]) -> list[str]:
    """Every secret value in the settings, top level and per stream.

    In every spelling that could be written out: as given, percent-decoded, Basic token.
    """
    found = tunnel_secrets(config)
    for stream in stream_keys(config):
        values = merged(config, stream)
        for setting in ("url", "delete_url"):
            try:
                url = urlsplit(str(values.get(setting) or ""))
            except ValueError:  # not a URL: the settings check refuses it
                url = urlsplit("")
            if url.password:
                password = unquote(url.password)
                user = unquote(url.username or "")
                found += [url.password, password, basic_token(user, password, utf8=True)]
        if values.get("password") is not None:
            password = str(values["password"])
            user = str(values.get("username") or "")
            found += [password, basic_token(user, password, utf8=True)]
        for name, value in dict(values.get("headers") or {}).items():
            if is_secret_header(str(name)):
                found += [str(value), str(value).partition(" ")[2]]  # "Bearer <token>"
        found += auth_secrets(values)
        for path in ("response_file_path", "error_file_path"):
            found += url_secrets(str(values.get(path) or ""))  # ftp://user:password@...
        found += redis_secrets(values)
    return found
