"""Where requests go: a record may fill the path and query of a URL, never its host.

Two guards. At start-up, a URL template with a placeholder in its scheme, user-info, host
or port is refused unless `allow_record_hosts` is true (records would choose where the
credentials go). On the wire, a value of `.` or `..` stays percent-encoded: requests'
URL preparation decodes `%2E` and servers would then walk the path.
"""

from __future__ import annotations

import requests

from target_restapi.errors import SettingsError
from target_restapi.templates import DOT_SEGMENTS, PLACEHOLDER

_MARK = "\x00"  # stands for a placeholder: it is none of the URL delimiters


def host_placeholders(url: str) -> list[str]:
    """The fields filled into the scheme, user-info, host or port of a URL template."""
    marked = PLACEHOLDER.sub(_MARK, url)
    after_scheme = marked.find("://")
    start = after_scheme + 3 if after_scheme >= 0 else 0
    ends = [i for i in (marked.find(c, start) for c in "/?#") if i >= 0]
    head_marks = marked[: min(ends, default=len(marked))].count(_MARK)
    return [match.group(1).strip() for match in PLACEHOLDER.finditer(url)][:head_marks]


def check_record_hosts(url: str, allowed: bool, where: str, setting: str = "url") -> None:
    """Refuse a URL whose host part records fill, unless `allow_record_hosts` says so."""
    fields = host_placeholders(url)
    if fields and not allowed:
        names = ", ".join(f"#{{{field}}}" for field in fields)
        raise SettingsError(
            f"{where}: setting '{setting}' puts {names} in the scheme, host, port or user-info, so "
            "records would choose where requests and their credentials go; fill only the "
            "path and query from records, or set allow_record_hosts to true"
        )


def encode_dot_segments(url: str) -> str:
    """`url` with each `.` or `..` path segment percent-encoded (`%2E`, `%2E%2E`)."""
    scheme_end = url.find("://")
    start = url.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
    if start < 0:
        return url
    ends = [i for i in (url.find("?", start), url.find("#", start)) if i >= 0]
    end = min(ends, default=len(url))
    segments = url[start:end].split("/")
    if not any(segment in DOT_SEGMENTS for segment in segments):
        return url
    path = "/".join(DOT_SEGMENTS.get(segment, segment) for segment in segments)
    return url[:start] + path + url[end:]


class DotSafeSession(requests.Session):
    """A session that sends `%2E` and `%2E%2E` path segments as they were given.

    requests' URL preparation first removes literal dot segments, then decodes `%2E`
    into `.`: every dot segment left afterwards came encoded, so it is encoded again.
    """

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare as requests does, then restore the encoded dot segments."""
        prepared = super().prepare_request(request)
        prepared.url = encode_dot_segments(prepared.url or "")
        return prepared
