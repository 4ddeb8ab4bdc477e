"""One place that removes secrets from everything the target writes out.

Error messages, log lines (through a logging filter on every handler) and error files
all pass through a Redactor that knows the run's secret values.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"
# Header names that carry credentials: Authorization, Cookie, X-API-Key, X-Auth-Token,
# Ocp-Apim-Subscription-Key, X-Amz-Security-Token, ... but not Idempotency-Key.
_SECRET_HEADER = re.compile(
    r"auth|token|secret|passw|cookie|session|credential|(?<!idempotency-)key$", re.IGNORECASE
)


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential, judged by its name."""
    return _SECRET_HEADER.search(name) is not None


def redact_url(url: str) -> str:
    """Drop the user-info part (`user:password@`) of a URL or an fsspec path."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (a bad IPv6 address...): nothing recognisable to drop
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def url_secrets(url: str) -> list[str]:
    """The password of a URL's user-info, as written and percent-decoded."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [] if not password else [password, unquote(password)]


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Mask the values of headers that carry credentials."""
    return {name: REDACTED if is_secret_header(name) else value for name, value in headers.items()}


def basic_token(username: str, password: str, *, utf8: bool = False) -> str:
    """The base64 text a Basic Authorization header carries (a secret as well).

    `utf8`: as auth.BasicAuth sends it (RFC 7617); else as authlib sends OAuth2 client
    credentials: latin-1 when the text allows, else UTF-8.
    """
    text = f"{username}:{password}"
    try:
        raw = text.encode("utf-8" if utf8 else "latin-1")
    except UnicodeEncodeError:
        raw = text.encode()
    return base64.b64encode(raw).decode()


class Redactor(logging.Filter):
    """Masks known secret values in text; as a logging filter, in every log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self._adding = threading.Lock()  # tokens fetched at run time come from any thread
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secret values (longest first, so no part of one stays visible)."""
        with self._adding:
            known = set(self._secrets) | {s for s in secrets if s and len(s) >= 3}
            self._secrets = sorted(known, key=len, reverse=True)

    def text(self, text: str) -> str:
        """`text` with every known secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def clip(self, text: str, limit: int, *, cut: bool = False) -> str:
        """`text` with secrets masked, then cut to `limit` characters (`…` marks a cut).

        Masking comes first: a secret cut in half is no longer recognised. `cut` says
        `text` is itself the start of something longer; then, and whenever this cuts, a
        tail that begins a secret is dropped too, as its rest may have been cut off.
        """
        masked = self.text(text)
        if len(masked) <= limit and not cut:
            return masked
        kept = masked[:limit]
        return kept[: len(kept) - self._secret_start_at_end(kept)] + "…"

    def _secret_start_at_end(self, text: str) -> int:
        """The length of the longest end of `text` that is the start of a known secret."""
        longest = 0
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), longest, -1):
                if text.endswith(secret[:size]):
                    longest = size
                    break
        return longest

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets masked; never drop the record."""
        if self._secrets:
            message = record.getMessage()
            clean = self.text(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True

    def install(self) -> None:
        """Attach to every handler of the root logger and of loggers that have their own."""
        loggers = [logging.getLogger()] + [
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if self not in handler.filters:
                    handler.addFilter(self)
