"""Start-up checks of settings that each look fine alone: URL form, method and mode, no-ops.

Pure functions over merged settings values: a problem is returned as text, and the caller
names the stream and raises or warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from target_restapi.delivery.url_safety import host_placeholders
from target_restapi.templates import PLACEHOLDER, Template

SCHEMES = ("http", "https")
_FIELD = "__field__"  # stands in for a `#{...}` placeholder while the URL is parsed


def url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host (the fix included), or None.

    Placeholders may fill the path and query. Where one sits in the scheme or host, the
    URL can only be judged per record, once rendered; it passes here.
    """
    marked = PLACEHOLDER.sub(_FIELD, url)
    try:
        parts = urlsplit(marked)
        head = parts.scheme + "://" + parts.netloc
        if _FIELD in head or (not parts.netloc and marked.startswith(_FIELD)):
            return None  # seam: a field gives the scheme or host; checked when rendered
        host, _port = parts.hostname, parts.port  # port raises ValueError when malformed
    except ValueError as exc:
        return f"is not a valid URL ({exc}); write it as https://host/path"
    if parts.scheme.lower() in SCHEMES:
        return None if host else "has no host; write it as https://host/path"
    if "://" in url:
        return (
            f"uses {parts.scheme}://, which this target cannot send to; "
            "use an http:// or https:// URL"
        )
    if url.startswith("/"):
        return f"is a path without scheme and host; write it as 'https://<host>{url}'"
    shown = url if "@" not in url else "host/path"  # user:password@ stays unquoted
    return f"has no scheme; write it as 'https://{shown}' (or http://)"


def method_problem(method: str, request_mode: str) -> str | None:
    """GET carries no body: in batch and one modes every record would be thrown away."""
    if method == "GET" and request_mode != "single":
        return (
            f"method GET cannot be used with request_mode '{request_mode}': a GET request "
            "carries no body, so the records of a batch would not be sent; use POST (or "
            "PUT/PATCH) to send records in a body, or request_mode 'single' with the "
            "record's fields in 'url' or 'headers' as #{field}"
        )
    return None


def start_warnings(
    values: Mapping[str, Any], own: Mapping[str, Any], *, saving_elsewhere: bool = False
) -> list[str]:
    """Settings that will do nothing: said once at start, the run goes on.

    `values` are the merged settings of a stream (or the top level), `own` the layer it
    sets itself, so a top-level setting is reported once, not for every stream.
    `saving_elsewhere`: another layer turns on save_responses and may use this path.
    """
    warnings = []
    request = {"method", "url", "headers"}
    if str(values.get("method")).upper() == "GET" and request & set(own):
        texts = [str(values.get("url") or ""), *map(str, (values.get("headers") or {}).values())]
        if not any(Template.parse(text).fields for text in texts):
            warnings.append(
                "method GET sends no body and neither 'url' nor 'headers' uses a record field "
                "(#{field}), so every record makes the same request; put the fields into the "
                "URL, e.g. 'https://api.example.com/users/#{id}', or use POST"
            )
    chosen = host_placeholders(str(values.get("url") or ""))
    if chosen and values.get("allow_record_hosts") and {"url", "allow_record_hosts"} & set(own):
        warnings.append(
            "allow_record_hosts is true: records choose where requests and their credentials "
            f"go ({', '.join(f'#{{{name}}}' for name in chosen)} in the host part of 'url')"
        )
    if own.get("response_fields") and not values.get("save_responses"):
        warnings.append(
            "setting 'response_fields' has no effect until 'save_responses' is true: the "
            "picked fields are written to the response file; set save_responses: true and "
            "response_file_path, or remove it"
        )
    unused = own.get("response_file_path") and not values.get("save_responses")
    if unused and not saving_elsewhere:
        warnings.append(
            "setting 'response_file_path' has no effect until 'save_responses' is true; "
            "set save_responses: true to write response files, or remove the path"
        )
    return warnings
