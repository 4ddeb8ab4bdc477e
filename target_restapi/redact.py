"""One place that removes secrets from everything the target writes out."""

from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_url(url: str) -> str:
    """Drop the user-info part (`user:password@`) of a URL."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Mask the values of headers that carry credentials."""
    return {
        name: REDACTED if name.lower() in SECRET_HEADERS else value
        for name, value in headers.items()
    }


def redact_text(text: str, secrets: list[str]) -> str:
    """Mask every occurrence of a known secret value in free text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
